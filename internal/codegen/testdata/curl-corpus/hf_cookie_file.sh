curl -b cookies.txt -c jar.txt http://localhost:28139/
