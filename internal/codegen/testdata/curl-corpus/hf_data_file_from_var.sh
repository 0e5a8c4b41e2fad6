curl -d @"$DATA_FILE" http://localhost:28139/data
