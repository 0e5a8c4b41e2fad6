curl -b cookies.txt -c saved.txt http://localhost:28139/cookies/set
