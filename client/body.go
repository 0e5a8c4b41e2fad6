package client

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/holdfast/holdfast/cause"
)

// replay hands each attempt a fresh copy of the request body.
type replay struct {
	orig    io.ReadCloser                 // the caller's body until an attempt takes it
	getBody func() (io.ReadCloser, error) // nil: the body is streamed, not replayed
	length  int64                         // the length of a buffered body, else -1
	lent    *lentBody                     // a streamed body lent to the last attempt
	empty   bool                          // the request has no body: each attempt sends none, as the caller's
}

// noBody is the getBody of a request without a body.
func noBody() (io.ReadCloser, error) { return http.NoBody, nil }

// init prepares req's body for replay: req.GetBody when set, else the body
// read into memory if it fits in limit bytes. A larger body (or any body,
// with a negative limit) is streamed by the first attempt only.
func (r *replay) init(req *http.Request, limit int64) error {
	*r = replay{orig: req.Body, getBody: req.GetBody, length: -1}
	switch {
	case req.Body == nil || req.Body == http.NoBody:
		r.orig, r.empty = nil, true
		r.getBody = noBody
	case req.GetBody != nil, limit < 0, req.ContentLength > limit:
	default:
		buf, err := io.ReadAll(io.LimitReader(req.Body, limit+1))
		if err != nil {
			req.Body.Close()
			return fmt.Errorf("client: reading the request body: %w", err)
		}
		if int64(len(buf)) > limit {
			// Too large to keep: send what was read, then the rest.
			r.orig = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(buf), req.Body), req.Body}
			return nil
		}
		req.Body.Close()
		r.orig, r.length = nil, int64(len(buf))
		r.getBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	}
	return nil
}

// next returns the body for the next attempt and sets areq's GetBody, so
// that the base transport can replay it too.
func (r *replay) next(areq *http.Request) (io.ReadCloser, error) {
	if r.empty {
		// No body at all, rather than an empty one to copy: net/http
		// writes a request whose Body is nil or NoBody with no body, but
		// copies from any other reader, NoBody too, through a
		// LimitReader.
		return areq.Body, nil
	}
	areq.GetBody = r.getBody
	if r.length >= 0 && areq.ContentLength <= 0 {
		areq.ContentLength = r.length
	}
	if r.orig != nil {
		b := r.orig
		r.orig = nil
		if r.getBody == nil {
			r.lent = &lentBody{rc: b}
			return r.lent, nil
		}
		return b, nil
	}
	if r.getBody == nil {
		return nil, fmt.Errorf("client: request body already sent and cannot be replayed")
	}
	return r.getBody()
}

// replayable reports whether another attempt can be given the body: it
// can be replayed, or it is streamed and no attempt has read from it yet.
func (r *replay) replayable() bool {
	if r.lent != nil && r.lent.reclaim() {
		r.orig, r.lent = r.lent.rc, nil
	}
	return r.getBody != nil || r.orig != nil
}

// shareable reports whether attempts in flight at the same time can each
// be given the whole body: it is replayed, not streamed.
func (r *replay) shareable() bool { return r.getBody != nil }

// close closes the caller's body if no attempt took it: a RoundTripper
// must close the request body, even on errors.
func (r *replay) close() {
	if r.orig != nil {
		r.orig.Close()
		r.orig = nil
	}
}

// lentBody lends a streamed request body to one attempt. An attempt that
// ends before reading a byte of it (its connection was refused, say)
// leaves it whole, and the next attempt can send it; net/http closes a
// request body on every error, so the close of an unread lentBody is not
// passed on. Read and Close may come from net/http's goroutines, even
// after RoundTrip returned.
type lentBody struct {
	rc    io.ReadCloser
	state atomic.Int32
}

const (
	lentFresh  = iota // not read yet
	lentRead          // an attempt is reading it
	lentClosed        // read and closed
	lentBack          // taken back unread: this attempt may not touch it
)

func (b *lentBody) Read(p []byte) (int, error) {
	if b.state.CompareAndSwap(lentFresh, lentRead) || b.state.Load() == lentRead {
		return b.rc.Read(p)
	}
	return 0, errors.New("client: request body read after close")
}

func (b *lentBody) Close() error {
	if b.reclaim() {
		return nil // unread: kept for the next attempt, or closed by replay.close
	}
	if b.state.Swap(lentClosed) == lentRead {
		return b.rc.Close()
	}
	return nil
}

// reclaim takes the body back if no byte of it was read.
func (b *lentBody) reclaim() bool {
	return b.state.CompareAndSwap(lentFresh, lentBack) || b.state.Load() == lentBack
}

// drainTimeout bounds the reading of a discarded response body.
const drainTimeout = 250 * time.Millisecond

// drain reads a discarded response body up to drainLimit and closes it,
// so that the connection goes back to the pool. It returns the body
// buffered when all of it fit.
func drain(body io.ReadCloser) (io.ReadCloser, bool) {
	// A body that stalls must not hold up the retry: past drainTimeout it
	// is closed, and its connection with it.
	t := time.AfterFunc(drainTimeout, func() { body.Close() })
	buf, err := io.ReadAll(io.LimitReader(body, drainLimit+1))
	stopped := t.Stop()
	body.Close()
	if !stopped {
		return nil, false
	}
	if err != nil || len(buf) > drainLimit {
		return nil, false
	}
	return io.NopCloser(bytes.NewReader(buf)), true
}

// causeBody names the cause of a read error on the final response's body,
// so that a reset or a stall part way through is an error that says so.
// Closing it releases the attempt's tracker, once.
type causeBody struct {
	io.ReadCloser
	tr atomic.Pointer[cause.Tracker]
}

func (b *causeBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		// The header arrived: whatever fails now fails reading the body.
		err = &cause.Error{Cause: cause.Classify(err, cause.PhaseRead), Phase: cause.PhaseRead, Err: err}
	}
	return n, err
}

// Close implements io.Closer.
func (b *causeBody) Close() error {
	err := b.ReadCloser.Close()
	if tr := b.tr.Swap(nil); tr != nil {
		tr.Release()
	}
	return err
}

// newKey returns a random (version 4) UUID for an Idempotency-Key.
func newKey() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
