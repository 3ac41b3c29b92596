package etcd

import (
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// errEndpoint is the reason every endpoint that ParseEndpoint refuses shares.
var errEndpoint = errors.New("want http://host:port, https://host:port or host:port")

// ParseEndpoint checks one etcd client endpoint as Config.Endpoints takes it
// and returns it as a URL: http:// or https://, a host and a port from 1 to
// 65535 (a bare host:port means http://). It is the one rule for endpoints:
// the configuration applies it before connecting, NewClient when it
// connects. Other schemes (unix://, ftp://) are refused.
func ParseEndpoint(ep string) (string, error) {
	ep = strings.TrimSpace(ep)
	if !strings.Contains(ep, "://") {
		ep = "http://" + ep
	}
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", errEndpoint
	}
	_, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return "", errors.New("want a port")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", errors.New("want a port number from 1 to 65535")
	}
	return ep, nil
}
