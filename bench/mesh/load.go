package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// latencies is a sample of request durations.
type latencies []time.Duration

func (l latencies) pct(p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	i := int(p / 100 * float64(len(s)-1))
	return s[i]
}

// arrivals says when requests are due: uniform spacing, or bursts of
// burst requests at once, at the same mean rate.
type arrivals struct {
	rate  int // per second
	burst int // 1 for uniform
}

// keepAliveLoad sends 1 KB POSTs over conns kept-alive connections at the
// given arrivals for d, open loop: a request's latency counts from when it
// was due, so a slow path cannot hide its queueing (no coordinated
// omission). It returns the latencies and the number of failures.
func keepAliveLoad(addr string, conns int, arr arrivals, d time.Duration) (latencies, int, error) {
	body := bytes.Repeat([]byte("x"), 1024)
	req := []byte(fmt.Sprintf("POST /echo HTTP/1.1\r\nHost: bench\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", len(body)))
	req = append(req, body...)
	due := make(chan time.Time, 100000)
	var mu sync.Mutex
	var lat latencies
	failures := 0
	var wg sync.WaitGroup
	for range conns {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			close(due)
			wg.Wait()
			return nil, 0, err
		}
		br := bufio.NewReaderSize(c, 4096)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			for at := range due {
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				_, err := c.Write(req)
				var resp *http.Response
				if err == nil {
					resp, err = http.ReadResponse(br, nil)
				}
				if err == nil {
					var n int64
					n, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && (resp.StatusCode != 200 || n != int64(len(body))) {
						err = fmt.Errorf("answer %d with %d bytes", resp.StatusCode, n)
					}
				}
				took := time.Since(at)
				mu.Lock()
				if err != nil {
					failures++
				} else {
					lat = append(lat, took)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	interval := time.Second * time.Duration(arr.burst) / time.Duration(arr.rate)
	start := time.Now()
	for next := start; next.Sub(start) < d; next = next.Add(interval) {
		time.Sleep(time.Until(next))
		for range arr.burst {
			due <- next
		}
	}
	close(due)
	wg.Wait()
	return lat, failures, nil
}

// newConnLoad opens a new connection per request at rate per second for d
// (open loop), sends one byte to the echo and reads it back.
func newConnLoad(addr string, rate int, d time.Duration) (latencies, int) {
	var mu sync.Mutex
	var lat latencies
	failures := 0
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	for next := start; next.Sub(start) < d; next = next.Add(interval) {
		time.Sleep(time.Until(next))
		wg.Add(1)
		go func(at time.Time) {
			defer wg.Done()
			err := func() error {
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					return err
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := c.Write([]byte{'x'}); err != nil {
					return err
				}
				var b [1]byte
				_, err = io.ReadFull(c, b[:])
				return err
			}()
			took := time.Since(at)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failures++
				return
			}
			lat = append(lat, took)
		}(next)
	}
	wg.Wait()
	return lat, failures
}

// bulk writes n bytes through one connection to the sink and returns MB/s,
// timed until the sink confirms the count.
func bulk(addr string, n int64) (float64, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	buf := make([]byte, 256<<10)
	start := time.Now()
	for left := n; left > 0; {
		k := int64(len(buf))
		if left < k {
			k = left
		}
		if _, err := c.Write(buf[:k]); err != nil {
			return 0, err
		}
		left -= k
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	var got uint64
	if err := binary.Read(c, binary.BigEndian, &got); err != nil {
		return 0, fmt.Errorf("no count from the sink: %w", err)
	}
	if int64(got) != n {
		return 0, fmt.Errorf("the sink counted %d bytes of %d", got, n)
	}
	return float64(n) / 1e6 / time.Since(start).Seconds(), nil
}

var (
	wrkRPS      = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	wrkRequests = regexp.MustCompile(`(\d+) requests in`)
)

// wrkMax runs wrk with 16 connections of 1 KB POSTs for d and returns its
// requests per second and how many it made; non-2xx answers or socket
// errors fail it.
func wrkMax(dir, addr string, d time.Duration) (rps float64, requests int64, err error) {
	script := filepath.Join(dir, "post.lua")
	if _, err := os.Stat(script); err != nil {
		lua := "wrk.method = \"POST\"\nwrk.body = string.rep(\"x\", 1024)\nwrk.headers[\"Content-Type\"] = \"application/octet-stream\"\n"
		if err := os.WriteFile(script, []byte(lua), 0o600); err != nil {
			return 0, 0, err
		}
	}
	secs := max(int(d.Seconds()), 1)
	ctx, cancel := context.WithTimeout(context.Background(), d+time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "wrk", "-t2", "-c16", "-d"+strconv.Itoa(secs)+"s", "-s", script, "http://"+addr+"/echo").CombinedOutput()
	if err != nil {
		return 0, 0, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "Non-2xx") || strings.Contains(string(out), "Socket errors") {
		return 0, 0, fmt.Errorf("wrk saw errors:\n%s", out)
	}
	m := wrkRPS.FindSubmatch(out)
	if m == nil {
		return 0, 0, errors.New("wrk printed no Requests/sec")
	}
	n := wrkRequests.FindSubmatch(out)
	if n == nil {
		return 0, 0, errors.New("wrk printed no request count")
	}
	requests, _ = strconv.ParseInt(string(n[1]), 10, 64)
	rps, err = strconv.ParseFloat(string(m[1]), 64)
	return rps, requests, err
}
