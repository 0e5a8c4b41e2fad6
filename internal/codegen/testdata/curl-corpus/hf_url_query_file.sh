curl --url-query @query.txt --url-query 'b=2' http://localhost:28139/q
