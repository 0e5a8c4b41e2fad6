curl --range 0-99 http://localhost:28139/file
