package client

import (
	"container/list"
	"sync"
	"time"
)

// cache holds decide answers by request body, evicting the least recently used.
// Each entry has its own lock, held across the request that fills it, so concurrent
// callers for one user make one request.
type cache struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *cacheEntry, most recently used first
	byKey map[string]*list.Element
}

type cacheEntry struct {
	key string
	mu  sync.Mutex
	ok  bool
	at  time.Time
	d   Decisions
}

func newCache(max int) *cache {
	return &cache{max: max, order: list.New(), byKey: map[string]*list.Element{}}
}

// entry returns the entry for key, creating it (and evicting the oldest) if needed.
func (c *cache) entry(key string) *cacheEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[key]; ok {
		c.order.MoveToFront(el)
		return el.Value.(*cacheEntry)
	}
	e := &cacheEntry{key: key}
	c.byKey[key] = c.order.PushFront(e)
	if c.order.Len() > c.max {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.byKey, oldest.Value.(*cacheEntry).key)
	}
	return e
}
