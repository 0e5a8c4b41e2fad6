curl --data-urlencode note@notes.txt --data-urlencode @raw.txt http://localhost:28139/form
