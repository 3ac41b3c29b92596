package etcd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// diagnoseDelay is how long a first request may take before the diagnosis
// looks at the way to each endpoint: etcd answers sooner when it is there.
const diagnoseDelay = 200 * time.Millisecond

// causeError is what the diagnosis found on the way to one endpoint;
// permanent when the user must fix it.
type causeError struct {
	msg       string
	permanent bool
}

func (e *causeError) Error() string { return e.msg }

func transient(format string, args ...any) error {
	return &causeError{msg: fmt.Sprintf(format, args...)}
}

func permanent(format string, args ...any) error {
	return &causeError{msg: fmt.Sprintf(format, args...), permanent: true}
}

// diagnosis finds why a first request to etcd does not get through: it
// dials each endpoint itself, with the client's TLS configuration, where
// gRPC keeps the cause of a failed connection to itself.
type diagnosis struct {
	cancel context.CancelFunc
	done   chan struct{}
	causes []error // one per endpoint, nil where nothing was found; set before done closes
}

// startDiagnosis starts the diagnosis of cc's endpoints, bounded by ctx.
// When every endpoint has a definite cause, it calls endAttempt, so that
// the request does not wait for its deadline.
func startDiagnosis(ctx context.Context, cc clientv3.Config, endAttempt func()) *diagnosis {
	ctx, cancel := context.WithCancel(ctx)
	d := &diagnosis{cancel: cancel, done: make(chan struct{}), causes: make([]error, len(cc.Endpoints))}
	go func() {
		defer close(d.done)
		t := time.NewTimer(diagnoseDelay)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		results := make(chan struct{}, len(cc.Endpoints))
		for i, ep := range cc.Endpoints {
			go func() {
				d.causes[i] = probe(ctx, ep, cc.TLS)
				results <- struct{}{}
			}()
		}
		for range cc.Endpoints {
			<-results
		}
		for _, c := range d.causes {
			if c == nil {
				return
			}
		}
		endAttempt()
	}()
	return d
}

// stop ends the diagnosis and waits for it.
func (d *diagnosis) stop() {
	d.cancel()
	<-d.done
}

// result waits for the diagnosis to end (its context ends it) and returns
// the causes it found.
func (d *diagnosis) result() []error {
	<-d.done
	return d.causes
}

// probe returns what keeps a client from etcd at ep (a URL), or nil when it
// finds nothing: a TCP connection, then for https:// a TLS handshake with
// tc and the server's first bytes (TLS 1.3 servers refuse a client
// certificate only after the handshake), for http:// a check that the
// server does not speak TLS.
func probe(ctx context.Context, ep string, tc *tls.Config) error {
	u, err := url.Parse(ep)
	if err != nil {
		return nil
	}
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return dialCause(ctx, u.Host, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	unbind := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer unbind()
	if u.Scheme != "https" {
		tconn := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12})
		if tconn.HandshakeContext(ctx) == nil {
			return permanent("the endpoint speaks TLS: use https://%s", u.Host)
		}
		return nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if tc != nil {
		c = tc.Clone()
	}
	if c.ServerName == "" {
		c.ServerName = u.Hostname()
	}
	tconn := tls.Client(conn, c)
	if err := tconn.HandshakeContext(ctx); err != nil {
		if (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) && speaksHTTP(ctx, u.Host) {
			return permanent("the endpoint does not speak TLS: use http://%s", u.Host)
		}
		return tlsCause(ctx, err, c)
	}
	if _, err := tconn.Read(make([]byte, 1)); err != nil {
		return tlsCause(ctx, err, c)
	}
	return nil
}

// dialCause names why a TCP connection to host failed.
func dialCause(ctx context.Context, host string, err error) error {
	var dnsErr *net.DNSError
	switch {
	case ctx.Err() != nil:
		return nil
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return transient("host %s not found (DNS): check the name", dnsErr.Name)
	case errors.As(err, &dnsErr):
		return transient("look up host %s: %s", dnsErr.Name, dnsErr.Err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return transient("connection refused: nothing listens on %s", host)
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return transient("no route to %s", host)
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Timeout() {
		return nil
	}
	return transient("connect to %s: %v", host, err)
}

// tlsCause names why a TLS connection failed; every TLS failure is the
// user's to fix.
func tlsCause(ctx context.Context, err error, c *tls.Config) error {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		header   tls.RecordHeaderError
		opErr    *net.OpError
	)
	switch {
	case errors.As(err, &unknown):
		return permanent("tls: %v: etcd's certificate is not signed by the CA certificate (--cacert)", unknown.Error())
	case errors.As(err, &hostname):
		return permanent("tls: %v: etcd's certificate is not valid for %s", hostname.Error(), c.ServerName)
	case errors.As(err, &invalid):
		return permanent("tls: %v", invalid.Error())
	case errors.As(err, &header):
		return permanent("the endpoint does not speak TLS: use http://")
	case errors.As(err, &opErr) && opErr.Op == "remote error":
		msg := opErr.Err.Error()
		switch {
		case strings.Contains(msg, "certificate required"):
			return permanent("tls: etcd requires a client certificate: set the client certificate and key (--cert, --key)")
		case strings.Contains(msg, "bad certificate"), strings.Contains(msg, "unknown certificate"),
			strings.Contains(msg, "certificate expired"), strings.Contains(msg, "certificate revoked"):
			return permanent("tls: etcd refused the client certificate (%s)", msg)
		}
		return permanent("tls: etcd refused the connection (%s)", msg)
	case ctx.Err() != nil:
		return nil
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF):
		return transient("etcd closed the connection during the TLS handshake: does the endpoint speak TLS? (a plain etcd wants http://)")
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	return permanent("tls: %v", err)
}

// speaksHTTP reports whether the server at host answers a plain HTTP/1.1
// request (etcd serves /version on its client port).
func speaksHTTP(ctx context.Context, host string) bool {
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", host)
	if err != nil {
		return false
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	unbind := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer unbind()
	if _, err := io.WriteString(conn, "GET /version HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n"); err != nil {
		return false
	}
	buf := make([]byte, 5)
	_, err = io.ReadFull(conn, buf)
	return err == nil && string(buf) == "HTTP/"
}
