import pytest


@pytest.mark.parametrize("url", ["protocol://admin:123@service:8080", "http://u:p@h"])
def test_parse_userinfo(url):
    assert parse(url).password
