curl --digest -u user:secret -d 'a=1' http://localhost:28139/digest
