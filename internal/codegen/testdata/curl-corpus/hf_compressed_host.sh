curl --compressed -H 'Host: example.test' http://localhost:28139/
