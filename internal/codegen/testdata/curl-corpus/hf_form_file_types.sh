curl -F name=@photo.jpg -F doc=@notes.txt -F page=@index.html -F raw=@data.bin http://localhost:28139/upload
