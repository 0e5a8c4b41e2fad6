curl --data-urlencode "q=$QUERY_TEXT" --data-urlencode "=$QUERY_TEXT" --url-query "tag=$QUERY_TEXT" http://localhost:28139/search
