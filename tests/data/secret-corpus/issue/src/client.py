class Client:
    def __init__(self, api_key=None):
        self.api_key = api_key


def demo_client():
    api_key = "test_api_key_1234567890abcdef"
    return Client(api_key=api_key)
