curl -H 'Accept-Encoding: gzip, deflate' http://localhost:28139/
