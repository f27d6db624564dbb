# The shape of the key the loader expects (a placeholder, not a key):
EXAMPLE_PEM = """-----BEGIN RSA PRIVATE KEY-----
MIIEpAIBAAKCAQEA...
-----END RSA PRIVATE KEY-----"""
