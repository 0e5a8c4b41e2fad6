curl http://localhost:28139/a --next -X POST -d x=1 http://localhost:28139/b
