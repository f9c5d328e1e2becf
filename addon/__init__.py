"""corsgate: the CORS layer of an API gateway, as a mitmproxy addon."""
