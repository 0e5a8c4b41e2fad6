package cache

// Results a caller reports with Count, one per request the cache saw.
const (
	ResultHit         = "hit"         // served fresh from the cache
	ResultMiss        = "miss"        // no usable entry: went upstream
	ResultRevalidated = "revalidated" // a conditional request got 304 and the entry was served
	ResultStale       = "stale"       // served stale: stale-while-revalidate, max-stale or stale-if-error
	ResultCollapsed   = "collapsed"   // waited on another request for the same key (Lead)
	ResultBypass      = "bypass"      // not for the cache: method, no-store, route without cache
)

// Stats is a snapshot of a Cache's contents and counters.
type Stats struct {
	// Entries counts the stored keys; a key's Vary variants count once.
	Entries int64 `json:"entries"`
	// Bytes is the weight of the stored entries (bodies, headers and a
	// fixed overhead each), bounded by MaxBytes.
	Bytes    int64 `json:"bytes"`
	MaxBytes int64 `json:"max_bytes"`

	Hits        int64 `json:"hits"`
	Misses      int64 `json:"misses"`
	Revalidated int64 `json:"revalidated"`
	StaleServed int64 `json:"stale_served"`
	Collapsed   int64 `json:"collapsed"`
	Bypassed    int64 `json:"bypassed"`
	// Stored counts the responses stored (refreshes included) and
	// Evicted the keys dropped to stay within MaxBytes.
	Stored  int64 `json:"stored"`
	Evicted int64 `json:"evicted"`
}

// Count adds one to the counter of result, one of the Result
// constants; other values are ignored.
func (c *Cache) Count(result string) {
	switch result {
	case ResultHit:
		c.hits.Add(1)
	case ResultMiss:
		c.misses.Add(1)
	case ResultRevalidated:
		c.revalidated.Add(1)
	case ResultStale:
		c.stale.Add(1)
	case ResultCollapsed:
		c.collapsed.Add(1)
	case ResultBypass:
		c.bypassed.Add(1)
	}
}

// Stats returns the current contents and counters.
func (c *Cache) Stats() Stats {
	// Otter accounts weights in its maintenance pass, which runs after
	// writes rather than in them; bring it up to date so that a Store is
	// reflected at once.
	c.store.CleanUp()
	return Stats{
		Entries:     int64(c.store.EstimatedSize()),
		Bytes:       int64(c.store.WeightedSize()),
		MaxBytes:    c.maxSize,
		Hits:        c.hits.Load(),
		Misses:      c.misses.Load(),
		Revalidated: c.revalidated.Load(),
		StaleServed: c.stale.Load(),
		Collapsed:   c.collapsed.Load(),
		Bypassed:    c.bypassed.Load(),
		Stored:      c.stored.Load(),
		Evicted:     c.evicted.Load(),
	}
}
