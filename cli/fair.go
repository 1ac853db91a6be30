package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/ranking/fairshare"
)

const fairSynopsis = "fair mode QUEUE [off|lru|share] | fair weight QUEUE KEY W | fair lateness QUEUE KEY DURATION | " +
	"fair tag QUEUE KEY [name=value...] | fair keys QUEUE [OFFSET [LIMIT]] | fair key QUEUE KEY"

// cmdFair is fair share by key: the mode, a key's weight, default lateness and tags,
// and the key view. Every argument is checked before anything is changed.
func cmdFair(ctx context.Context, e *env, args []string) int {
	return opsCommand{synopsis: fairSynopsis, least: 2, most: 3 + 16, // a key holds at most 16 tags
		check: func(pos []string) error { _, err := parseFair(pos); return err },
		run: func(ctx context.Context, e *env, c *queue.Client, pos []string) error {
			op, err := parseFair(pos)
			if err != nil {
				return err
			}
			if err := knownQueue(ctx, c, pos[1]); err != nil {
				return err
			}
			return op(ctx, e.out, c)
		}}.exec(ctx, e, args)
}

type fairOp func(ctx context.Context, w io.Writer, c *queue.Client) error

// parseFair reads the positional arguments into the operation they ask for.
func parseFair(pos []string) (fairOp, error) {
	use := badUsage("use: %s", fairSynopsis)
	q := pos[1]
	switch pos[0] {
	case "mode":
		if len(pos) == 2 {
			return func(ctx context.Context, w io.Writer, c *queue.Client) error {
				m, err := c.FairMode(ctx, q)
				if err == nil {
					fmt.Fprintf(w, "queue %s: fair mode %s\n", q, m)
				}
				return err
			}, nil
		}
		if len(pos) != 3 {
			return nil, use
		}
		m, err := fairshare.ParseMode(pos[2])
		if err != nil {
			return nil, badUsage("%v", err)
		}
		return func(ctx context.Context, w io.Writer, c *queue.Client) error {
			if err := c.SetFairMode(ctx, q, m); err != nil {
				return err
			}
			fmt.Fprintf(w, "queue %s: fair mode %s\n", q, m)
			return nil
		}, nil
	case "weight":
		if len(pos) != 4 {
			return nil, use
		}
		wt, err := strconv.ParseFloat(pos[3], 64)
		if err != nil {
			return nil, badUsage("fair weight %q: not a number", pos[3])
		}
		if err := fairshare.CheckWeight(wt); err != nil {
			return nil, badUsage("fair key %q: %v", pos[2], err)
		}
		return func(ctx context.Context, w io.Writer, c *queue.Client) error {
			if err := c.SetFairWeight(ctx, q, pos[2], wt); err != nil {
				return err
			}
			fmt.Fprintf(w, "queue %s: fair key %s weight %g\n", q, pos[2], wt)
			return nil
		}, nil
	case "lateness":
		if len(pos) != 4 {
			return nil, use
		}
		d, err := time.ParseDuration(pos[3])
		if err != nil || d < 0 {
			return nil, badUsage("fair lateness %q: want a duration of 0 or more, like 10m", pos[3])
		}
		return func(ctx context.Context, w io.Writer, c *queue.Client) error {
			if err := c.SetFairLateness(ctx, q, pos[2], d); err != nil {
				return err
			}
			fmt.Fprintf(w, "queue %s: fair key %s lateness %s\n", q, pos[2], d)
			return nil
		}, nil
	case "tag":
		if len(pos) < 3 {
			return nil, use
		}
		tags := map[string]string{}
		for _, t := range pos[3:] {
			n, v, ok := strings.Cut(t, "=")
			if !ok {
				return nil, badUsage("fair tag %q: want name=value", t)
			}
			tags[n] = v
		}
		return func(ctx context.Context, w io.Writer, c *queue.Client) error {
			if err := c.SetFairTags(ctx, q, pos[2], tags); err != nil {
				return err
			}
			fmt.Fprintf(w, "queue %s: fair key %s tags %s\n", q, pos[2], strings.Join(pos[3:], " "))
			return nil
		}, nil
	case "keys":
		if len(pos) > 4 {
			return nil, use
		}
		offset, limit := 0, 20
		for i, p := range pos[2:] {
			n, err := strconv.Atoi(p)
			if err != nil || n < 0 || (i == 1 && (n == 0 || n > 1000)) {
				return nil, badUsage("fair keys: %q is not an offset (0 or more) or a limit (1 to 1000)", p)
			}
			if i == 0 {
				offset = n
			} else {
				limit = n
			}
		}
		return func(ctx context.Context, w io.Writer, c *queue.Client) error {
			keys, total, err := c.FairKeys(ctx, q, offset, limit)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "queue %s: %d keys with pending jobs\n", q, total)
			return fairTable(w, keys)
		}, nil
	case "key":
		if len(pos) != 3 {
			return nil, use
		}
		return func(ctx context.Context, w io.Writer, c *queue.Client) error {
			k, err := c.FairKey(ctx, q, pos[2])
			if err != nil {
				return err
			}
			return fairTable(w, []fairshare.KeyInfo{k})
		}, nil
	}
	return nil, use
}

// fairTable writes key views as rows.
func fairTable(w io.Writer, keys []fairshare.KeyInfo) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tPENDING\tRUNNING\tSHARE\tWEIGHT\tLATENESS\tLAST SERVED\tTAGS")
	for _, k := range keys {
		name := k.Key
		if name == "" {
			name = fairshare.DefaultKeyName
		}
		last := "-"
		if !k.LastServed.IsZero() {
			last = time.Since(k.LastServed).Round(time.Millisecond).String() + " ago"
		}
		late := "-"
		if k.LateBy > 0 {
			late = k.LateBy.String()
		}
		var tags []string
		for n, v := range k.Tags {
			tags = append(tags, n+"="+v)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f%%\t%g\t%s\t%s\t%s\n", name, k.Pending, k.Running, k.Share*100, k.Weight, late, last, strings.Join(tags, ","))
	}
	return tw.Flush()
}
