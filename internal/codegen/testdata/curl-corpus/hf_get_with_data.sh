curl -X GET -d 'q=1' http://localhost:28139/search
