"""The web page (cgi-bin/zonevpn.cgi): strings (lang), form validation (form), rendering (page), and the
CGI request cycle (cgi). Runs as the web server user: writes only zonevpn's settings file."""
