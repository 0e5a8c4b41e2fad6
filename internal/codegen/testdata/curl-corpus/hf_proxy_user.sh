curl -x http://localhost:8080 -U puser:ppass http://localhost:28139/x
