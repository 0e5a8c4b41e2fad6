package codegen

import "github.com/holdfast/holdfast/internal/curl"

// What the JavaScript and Java generators ask of a request in common.

// keepsCookies reports whether r's program keeps cookies as curl's cookie
// engine does, which -b FILE and -c JAR turn on: the cookies of the files
// and those the responses set go with the requests they match.
func keepsCookies(r *curl.Request) bool {
	return len(r.CookieFiles) > 0 || r.CookieJar != ""
}

// filesAtRunTime returns the files whose contents r's URL and data hold,
// read when the program runs (--data-urlencode name@file, --url-query
// @file).
func filesAtRunTime(r *curl.Request) []string {
	return append(r.URL.Files(), r.Body.Data.Files()...)
}

// encodesAtRunTime reports whether r's URL or data hold values that the
// program URL-encodes when it runs.
func encodesAtRunTime(r *curl.Request) bool {
	return r.URL.Encodes() || r.Body.Data.Encodes()
}
