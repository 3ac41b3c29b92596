package etcd

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ccctl/ccctl/coordinator"
)

var _ coordinator.Historian = (*Coordinator)(nil)

// The history of master terms lives under history/, one group of keys per
// term, named by the term's token in 20 digits so that the keys sort as
// the terms do:
//
//	history/<token>         the beginning: written by the new master once
//	                        its term began (beginRecord)
//	history/<token>/end     the end: written by the resigning master in
//	                        the transaction that releases (or hands over)
//	                        the leadership, or, when it could not (a
//	                        crash, a cut-off), by the next master in the
//	                        transaction of its own beginning (endRecord)
//	history/<token>/fenced  written by a master that fenced itself, once
//	                        it reaches etcd again (fencedRecord)
//
// Each writer writes only its own facts, so no record is ever read,
// changed and written back. The new master's one transaction also deletes
// the terms older than the last HistorySize: a term costs one write of its
// own (the beginning), the rest rides on transactions that happen anyway.
// Every record is read like user input: a key or value that does not
// parse or validate is left out with a warning, and never stops a term
// from beginning or a history from being listed.

// historyKeyDigits is the width of a token in a history key.
const historyKeyDigits = 20

// beginRecord is the value of history/<token>.
type beginRecord struct {
	Token     int64            `json:"token"`
	Member    string           `json:"member"`
	Time      time.Time        `json:"time"`
	Reason    string           `json:"reason"`
	Positions map[string]int64 `json:"positions,omitempty"`
}

// endRecord is the value of history/<token>/end. Revision is 0 when the
// end is the record's own revision (the resigning master's transaction).
type endRecord struct {
	Member   string    `json:"member"`
	Revision int64     `json:"revision,omitempty"`
	Time     time.Time `json:"time"`
	Reason   string    `json:"reason"`
}

// fencedRecord is the value of history/<token>/fenced.
type fencedRecord struct {
	Member string    `json:"member"`
	Time   time.Time `json:"time"`
}

// historyKey returns the key of term token's beginning.
func (k keys) historyKey(token int64) string {
	return fmt.Sprintf("%s%0*d", k.history, historyKeyDigits, token)
}

// parseHistoryKey splits a key under history/ into the term's token and
// the record's kind ("" for the beginning, "end", "fenced").
func (k keys) parseHistoryKey(key string) (int64, string, bool) {
	rest, ok := strings.CutPrefix(key, k.history)
	if !ok || len(rest) < historyKeyDigits {
		return 0, "", false
	}
	digits, kind := rest[:historyKeyDigits], rest[historyKeyDigits:]
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, "", false
		}
	}
	token, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || token <= 0 {
		return 0, "", false
	}
	switch kind {
	case "":
	case "/end", "/fenced":
		kind = kind[1:]
	default:
		return 0, "", false
	}
	return token, kind, true
}

// parseHistory turns the records read at revision rev into terms, oldest
// first, leaving out (with a warning) what does not validate, and terms
// whose beginning is missing.
func (c *Coordinator) parseHistory(kvs []*mvccpb.KeyValue, rev int64) []coordinator.Term {
	type parts struct {
		begin  *coordinator.Term
		end    *endRecord
		endRev int64
		fenced *fencedRecord
	}
	byToken := map[int64]*parts{}
	bad := func(kv *mvccpb.KeyValue, why string) {
		if c.warnOnce(string(kv.Key), kv.ModRevision) {
			c.log.Warn("history: record ignored", "key", string(kv.Key), "reason", why)
		}
	}
	for _, kv := range kvs {
		token, kind, ok := c.keys.parseHistoryKey(string(kv.Key))
		if !ok {
			bad(kv, "not a history key")
			continue
		}
		if token > rev || kv.CreateRevision < token {
			bad(kv, "token from the future")
			continue
		}
		p := byToken[token]
		if p == nil {
			p = &parts{}
			byToken[token] = p
		}
		switch kind {
		case "":
			var r beginRecord
			if err := json.Unmarshal(kv.Value, &r); err != nil {
				bad(kv, "unreadable: "+err.Error())
				continue
			}
			t := coordinator.Term{
				Token: r.Token, Member: r.Member, Reason: r.Reason, Positions: r.Positions,
				Began: coordinator.Moment{Revision: token, Time: r.Time},
			}
			if r.Token != token {
				bad(kv, fmt.Sprintf("token %d in a record of term %d", r.Token, token))
				continue
			}
			if err := t.Validate(); err != nil {
				bad(kv, err.Error())
				continue
			}
			p.begin = &t
		case "end":
			var r endRecord
			if err := json.Unmarshal(kv.Value, &r); err != nil {
				bad(kv, "unreadable: "+err.Error())
				continue
			}
			if !coordinator.ValidEndReason(r.Reason) || r.Revision < 0 || r.Revision > kv.ModRevision ||
				(r.Revision != 0 && r.Revision < token) {
				bad(kv, fmt.Sprintf("end reason %q at revision %d: want a known reason and a revision of the term", r.Reason, r.Revision))
				continue
			}
			p.end, p.endRev = &r, kv.ModRevision
			if r.Revision != 0 {
				p.endRev = r.Revision
			}
		case "fenced":
			var r fencedRecord
			if err := json.Unmarshal(kv.Value, &r); err != nil {
				bad(kv, "unreadable: "+err.Error())
				continue
			}
			p.fenced = &r
		}
	}
	tokens := make([]int64, 0, len(byToken))
	for token, p := range byToken {
		if p.begin != nil {
			tokens = append(tokens, token)
		}
	}
	sort.Slice(tokens, func(i, j int) bool { return tokens[i] < tokens[j] })
	out := make([]coordinator.Term, 0, len(tokens))
	for _, token := range tokens {
		p := byToken[token]
		t := *p.begin
		if e := p.end; e != nil && (e.Member == "" || e.Member == t.Member) {
			t.Ended = &coordinator.Moment{Revision: p.endRev, Time: e.Time}
			t.EndReason = e.Reason
		}
		if f := p.fenced; f != nil && f.Member == t.Member {
			// The master's own word on why the term ended; the end (when
			// the next master recorded it) stays: when etcd knew.
			t.EndReason = coordinator.EndFenced
			if t.Ended == nil {
				t.Ended = &coordinator.Moment{Time: f.Time}
			}
		}
		out = append(out, t)
	}
	return out
}

// maxWarned bounds the records warnOnce remembers.
const maxWarned = 1000

// warnOnce reports whether the record at key, as of its modification
// revision rev, was not warned about yet by this handle: a page that polls
// /history logs a bad record once, not every two seconds.
func (c *Coordinator) warnOnce(key string, rev int64) bool {
	c.warnMu.Lock()
	defer c.warnMu.Unlock()
	if c.warned == nil || len(c.warned) >= maxWarned {
		c.warned = map[string]int64{}
	}
	if c.warned[key] == rev {
		return false
	}
	c.warned[key] = rev
	return true
}

// History returns the recorded terms, oldest first: the last limit of
// them (all that are kept when limit <= 0).
func (c *Coordinator) History(ctx context.Context, limit int) ([]coordinator.Term, error) {
	if err := c.check("history"); err != nil {
		return nil, err
	}
	resp, err := c.cli.Get(ctx, c.keys.history, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", c.cfg.Cluster, err)
	}
	terms := c.parseHistory(resp.Kvs, resp.Header.Revision)
	if limit > 0 && len(terms) > limit {
		terms = terms[len(terms)-limit:]
	}
	return terms, nil
}

// endReason returns why a term that hands over ends, given the keys as
// its monitor last saw them (the handover's transaction compares them).
func endReason(view electionState) string {
	if view.switchover != nil {
		return coordinator.EndSwitchover
	}
	return coordinator.EndResigned
}

// historyEndOp records the end of this member's term token for reason,
// at the revision of the transaction it is part of.
func (c *Coordinator) historyEndOp(token int64, reason string) clientv3.Op {
	b, _ := json.Marshal(endRecord{Member: c.cfg.ID, Time: c.clk.Now(), Reason: reason})
	return clientv3.OpPut(c.keys.historyKey(token)+"/end", string(b))
}

// historyResignOp records the end of this member's term token by a
// resignation, its reason as the transaction finds the control keys:
// paused, switchover or resigned.
func (c *Coordinator) historyResignOp(token int64) clientv3.Op {
	return clientv3.OpTxn(
		[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(c.keys.pause), ">", 0)},
		[]clientv3.Op{c.historyEndOp(token, coordinator.EndPaused)},
		[]clientv3.Op{clientv3.OpTxn(
			[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(c.keys.switchover), ">", 0)},
			[]clientv3.Op{c.historyEndOp(token, coordinator.EndSwitchover)},
			[]clientv3.Op{c.historyEndOp(token, coordinator.EndResigned)})})
}

// recordBegin records the beginning of this member's term token (see the
// comment at the top of the file), retrying while the session lives.
func (c *Coordinator) recordBegin(token int64, handedOver, switchover bool) {
	at := c.clk.Now()
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(c.s.ctx, c.cfg.DialTimeout)
		err := c.writeBegin(ctx, token, handedOver, switchover, at)
		cancel()
		if err == nil || c.s.ctx.Err() != nil {
			return
		}
		c.log.Warn("history: record the term's beginning", "token", token, "err", err)
		if attempt >= 2 || c.backoff(c.s.ctx, retryDelay) != nil {
			return
		}
	}
}

// writeBegin reads the keys of the earlier terms and the previous term's
// records, then writes, in one transaction: this term's beginning, the
// previous term's end if nobody recorded it, and the deletion of the
// terms beyond the last HistorySize.
func (c *Coordinator) writeBegin(ctx context.Context, token int64, handedOver, switchover bool, at time.Time) error {
	own := c.keys.historyKey(token)
	older, err := c.cli.Get(ctx, c.keys.history, clientv3.WithRange(own), clientv3.WithKeysOnly())
	if err != nil {
		return err
	}
	var tokens []int64 // of the earlier terms, ascending
	for _, kv := range older.Kvs {
		t, _, ok := c.keys.parseHistoryKey(string(kv.Key))
		if ok && t < token && (len(tokens) == 0 || tokens[len(tokens)-1] != t) {
			tokens = append(tokens, t)
		}
	}
	var prev *coordinator.Term
	var ops []clientv3.Op
	if n := len(tokens); n > 0 {
		pt := tokens[n-1]
		resp, err := c.cli.Get(ctx, c.keys.historyKey(pt), clientv3.WithRange(c.keys.historyKey(pt+1)))
		if err != nil {
			return err
		}
		if ts := c.parseHistory(resp.Kvs, resp.Header.Revision); len(ts) == 1 {
			prev = &ts[0]
		} else {
			prev = c.prevEndOnly(resp.Kvs)
		}
		if prev != nil && prev.EndReason == "" && prev.Member != "" {
			// Its master could not record the end (a crash, a cut-off):
			// its lease expired before this term began.
			b, _ := json.Marshal(endRecord{Member: prev.Member, Revision: token, Time: at, Reason: coordinator.EndLeaseExpired})
			end := c.keys.historyKey(pt) + "/end"
			ops = append(ops, clientv3.OpTxn(
				[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(end), "=", 0)},
				[]clientv3.Op{clientv3.OpPut(end, string(b))}, nil))
		}
	}
	b, _ := json.Marshal(beginRecord{
		Token: token, Member: c.cfg.ID, Time: at,
		Reason:    coordinator.BeginReason(prev, handedOver, switchover),
		Positions: c.positions(ctx),
	})
	ops = append(ops, clientv3.OpPut(own, string(b)))
	if cut := len(tokens) + 1 - c.cfg.HistorySize; cut > 0 {
		end := own
		if cut < len(tokens) {
			end = c.keys.historyKey(tokens[cut])
		}
		ops = append(ops, clientv3.OpDelete(c.keys.history, clientv3.WithRange(end)))
	}
	_, err = c.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(own), "=", 0)).Then(ops...).Commit()
	return err
}

// historyPositionsMax is the largest cluster whose members' positions a
// new term's record keeps: above it, the read of every record a term
// would cost is not worth a line of history.
const historyPositionsMax = 256

// positions returns the positions the member records publish as a term
// begins (nil when none does, or the cluster is larger than
// historyPositionsMax), so that the history shows how the candidates
// stood. A failed read only leaves them out.
func (c *Coordinator) positions(ctx context.Context) map[string]int64 {
	if c.counted.Load() > historyPositionsMax {
		return nil
	}
	resp, err := c.cli.Get(ctx, c.keys.members, clientv3.WithPrefix(), clientv3.WithLimit(historyPositionsMax+1))
	if err != nil || len(resp.Kvs) > historyPositionsMax {
		return nil
	}
	var out map[string]int64
	for _, kv := range resp.Kvs {
		if d := c.decodeKV(kv); d.err == nil && d.member.Position != nil {
			if out == nil {
				out = map[string]int64{}
			}
			out[d.member.ID] = *d.member.Position
		}
	}
	return out
}

// prevEndOnly returns what the records of a term without a valid
// beginning say about its end (nil when they say nothing), so that the
// next term's reason still follows it.
func (c *Coordinator) prevEndOnly(kvs []*mvccpb.KeyValue) *coordinator.Term {
	for _, kv := range kvs {
		_, kind, ok := c.keys.parseHistoryKey(string(kv.Key))
		if !ok || kind == "" {
			continue
		}
		if kind == "fenced" {
			return &coordinator.Term{EndReason: coordinator.EndFenced}
		}
		var r endRecord
		if json.Unmarshal(kv.Value, &r) == nil && coordinator.ValidEndReason(r.Reason) {
			return &coordinator.Term{EndReason: r.Reason}
		}
	}
	return nil
}

// recordFenced writes that this member's term token ended because it
// fenced itself at, once etcd answers, trying until stop is done. The term
// must still be in the history: a term trimmed meanwhile is not written
// again.
func (c *Coordinator) recordFenced(stop context.Context, token int64, at time.Time) {
	b, _ := json.Marshal(fencedRecord{Member: c.cfg.ID, Time: at})
	begin := c.keys.historyKey(token)
	for {
		ctx, cancel := context.WithTimeout(stop, c.cfg.DialTimeout)
		_, err := c.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(begin), ">", 0)).
			Then(clientv3.OpPut(begin+"/fenced", string(b))).Commit()
		cancel()
		if err == nil {
			c.log.Info("history: recorded the fenced term", "token", token)
			return
		}
		t := c.clk.NewTimer(time.Second)
		select {
		case <-stop.Done():
			t.Stop()
			return
		case <-t.C():
		}
	}
}
