package queue

import (
	"context"
	"time"

	"github.com/chronoq/chronoq/ranking/fairshare"
)

// SetFairMode switches queue's fairness between fair keys (job.FairKey): off (the
// default), lru (the key served least recently first, scaled by weight) or share
// (weighted fair share of worker time). Workers follow from their next fetch, without a
// restart; producers place new jobs by it within two seconds. Jobs placed under one
// mode drain under any other.
func (c *Client) SetFairMode(ctx context.Context, queue string, mode fairshare.Mode) error {
	return c.store.SetFairMode(ctx, queue, mode)
}

// FairMode reads queue's fairness mode.
func (c *Client) FairMode(ctx context.Context, queue string) (fairshare.Mode, error) {
	return c.store.FairMode(ctx, queue)
}

// SetFairWeight sets key's weight in queue: 2 is twice the share of a key of weight 1
// (the default); fairshare.CheckWeight gives the bounds. "" names the default key.
func (c *Client) SetFairWeight(ctx context.Context, queue, key string, w float64) error {
	return c.store.SetFairWeight(ctx, queue, key, w)
}

// SetFairLateness gives key's jobs a default job.SkipIfLate (used when a job has none of
// its own; celery-ranch's expiry); 0 removes it.
func (c *Client) SetFairLateness(ctx context.Context, queue, key string, d time.Duration) error {
	return c.store.SetFairLateness(ctx, queue, key, d)
}

// SetFairTags replaces key's tags (name → value; nil removes them), found again with
// FairKeysTagged.
func (c *Client) SetFairTags(ctx context.Context, queue, key string, tags map[string]string) error {
	return c.store.SetFairTags(ctx, queue, key, tags)
}

// FairKeys lists queue's keys with pending jobs in fair mode, most pending first, from
// offset, with how many keys have pending jobs.
func (c *Client) FairKeys(ctx context.Context, queue string, offset, limit int) ([]fairshare.KeyInfo, int64, error) {
	return c.store.FairKeys(ctx, queue, offset, limit)
}

// FairKey reads one key's view.
func (c *Client) FairKey(ctx context.Context, queue, key string) (fairshare.KeyInfo, error) {
	return c.store.FairKey(ctx, queue, key)
}

// FairKeysTagged lists up to limit keys of queue tagged name=value, in byte order.
func (c *Client) FairKeysTagged(ctx context.Context, queue, name, value string, limit int) ([]string, error) {
	return c.store.FairKeysTagged(ctx, queue, name, value, limit)
}
