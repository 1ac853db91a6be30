package queue

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chronoq/chronoq/internal/store"

	"github.com/redis/go-redis/v9"
)

// waitHub multiplexes every Wait of a client over one pub/sub connection.
type waitHub struct {
	ps    *redis.PubSub
	store *store.Store

	mu       sync.Mutex
	channels map[string]chan struct{} // channel -> closed once subscribed
	waiters  map[string]map[chan byte]struct{}
	pongs    map[string]chan struct{} // ping token -> closed when its pong arrives
	seq      uint64
	done     chan struct{}
}

func (c *Client) waitHub(ctx context.Context) (*waitHub, error) {
	c.hubOnce.Do(func() {
		h := &waitHub{
			ps:       c.store.Redis().Subscribe(context.Background()),
			store:    c.store,
			channels: map[string]chan struct{}{},
			waiters:  map[string]map[chan byte]struct{}{},
			pongs:    map[string]chan struct{}{},
			done:     make(chan struct{}),
		}
		go h.run()
		c.hub = h
	})
	return c.hub, nil
}

// watch registers for the end of job id on queue and returns once the subscription
// is confirmed by Redis.
func (h *waitHub) watch(ctx context.Context, queue, id string) (<-chan byte, func(), error) {
	ch := make(chan byte, 4)
	channel := h.store.Keys(queue).DoneChannel
	h.mu.Lock()
	set := h.waiters[id]
	if set == nil {
		set = map[chan byte]struct{}{}
		h.waiters[id] = set
	}
	set[ch] = struct{}{}
	ready, subscribed := h.channels[channel]
	if !subscribed {
		ready = make(chan struct{})
		h.channels[channel] = ready
	}
	h.mu.Unlock()
	cancel := func() {
		h.mu.Lock()
		delete(h.waiters[id], ch)
		if len(h.waiters[id]) == 0 {
			delete(h.waiters, id)
		}
		h.mu.Unlock()
	}
	if !subscribed {
		if err := h.write(ctx, func(wctx context.Context) error { return h.ps.Subscribe(wctx, channel) }); err != nil {
			// go-redis keeps the channel and subscribes again as it reconnects; the
			// confirmation then closes ready for the waiters still on it
			cancel()
			return nil, nil, err
		}
	}
	select {
	case <-ready:
		return ch, cancel, nil
	case <-ctx.Done():
		cancel()
		return nil, nil, ctx.Err()
	}
}

func (h *waitHub) run() {
	defer close(h.done)
	errs := 0
	for {
		msg, err := h.ps.Receive(context.Background())
		if err != nil {
			if err == redis.ErrClosed {
				return
			}
			// the connection broke: events may have been lost, so every waiter reads
			// again; back off while Redis stays away
			if errs == 0 {
				h.broadcast('r')
			}
			errs++
			time.Sleep(min(10*time.Millisecond<<min(errs, 9), 2*time.Second))
			continue
		}
		if errs > 0 {
			errs = 0
			h.broadcast('r') // back: whatever ended meanwhile is read now
		}
		switch m := msg.(type) {
		case *redis.Pong:
			h.mu.Lock()
			if ch, ok := h.pongs[m.Payload]; ok {
				close(ch)
				delete(h.pongs, m.Payload)
			}
			h.mu.Unlock()
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				h.mu.Lock()
				if ready, ok := h.channels[m.Channel]; ok {
					select {
					case <-ready:
						// a resubscription after a reconnect: events may have been lost
						h.mu.Unlock()
						h.broadcast('r')
						continue
					default:
						close(ready)
					}
				}
				h.mu.Unlock()
			}
		case *redis.Message:
			kind, ids, ok := strings.Cut(m.Payload, " ")
			if !ok || kind == "" {
				continue
			}
			h.mu.Lock()
			for _, id := range strings.Fields(ids) {
				for ch := range h.waiters[id] {
					select {
					case ch <- kind[0]:
					default:
					}
				}
			}
			h.mu.Unlock()
		}
	}
}

// sync returns once every message Redis sent on the subscription before now has been
// dispatched to the waiters: a PING's reply comes after them on the same connection.
func (h *waitHub) sync(ctx context.Context) error {
	h.mu.Lock()
	h.seq++
	token := "sync-" + strconv.FormatUint(h.seq, 10)
	ch := make(chan struct{})
	h.pongs[token] = ch
	h.mu.Unlock()
	if err := h.write(ctx, func(wctx context.Context) error { return h.ps.Ping(wctx, token) }); err != nil {
		h.mu.Lock()
		delete(h.pongs, token)
		h.mu.Unlock()
		return err
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// write sends a command on the shared subscription connection. go-redis takes the
// connection's write deadline from the context it is given, so one waiter's deadline
// must not be it: a deadline passing mid-write breaks the connection for every waiter
// and surfaces as an i/o timeout. The write gets a deadline of its own; the caller
// stops waiting for it at its context's end, with its context's error.
func (h *waitHub) write(ctx context.Context, send func(ctx context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		done <- send(wctx)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *waitHub) broadcast(ev byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, set := range h.waiters {
		for ch := range set {
			select {
			case ch <- ev:
			default:
			}
		}
	}
}

func (h *waitHub) close() error {
	err := h.ps.Close()
	<-h.done
	return err
}
