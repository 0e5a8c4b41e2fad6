curl -c jar.txt -b jar.txt http://localhost:28139/cookies/set http://localhost:28139/cookies/check
