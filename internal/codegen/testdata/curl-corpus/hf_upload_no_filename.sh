curl -T report.txt http://localhost:28139/uploads/
curl -T report.txt http://localhost:28139
