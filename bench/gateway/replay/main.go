// Command replay sends a JSON-lines request corpus (the waf-dev format:
// category, attack, method, target, headers, body, body_b64) to an HTTPS
// endpoint and counts how many attacks and benign requests were blocked
// (answered 403).
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

type req struct {
	Attack  bool   `json:"attack"`
	Method  string `json:"method"`
	Target  string `json:"target"`
	Headers []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"headers"`
	Body    string `json:"body"`
	BodyB64 string `json:"body_b64"`
}

func main() {
	base := flag.String("url", "https://127.0.0.1:8443", "gateway base URL")
	file := flag.String("corpus", "internal/waf/testdata/corpus.jsonl", "request corpus")
	workers := flag.Int("c", 4, "concurrent requests")
	name := flag.String("name", "", "label for the output line")
	limit := flag.Int("limit", 0, "send only the first N requests (0: all)")
	flag.Parse()
	f, err := os.Open(*file)
	if err != nil {
		log.Fatal(err)
	}
	var reqs []req
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() && (*limit <= 0 || len(reqs) < *limit) {
		var r req
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			log.Fatal(err)
		}
		reqs = append(reqs, r)
	}
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxIdleConnsPerHost: *workers},
	}
	var mu sync.Mutex
	var attacks, attacksBlocked, benign, benignBlocked, errs int
	next := make(chan int)
	var wg sync.WaitGroup
	for range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				r := reqs[i]
				body := []byte(r.Body)
				if r.BodyB64 != "" {
					if b, err := base64.StdEncoding.DecodeString(r.BodyB64); err == nil {
						body = b
					}
				}
				hr, err := http.NewRequest(r.Method, *base+r.Target, bytes.NewReader(body))
				code := 0
				if err == nil {
					hr.Host = "localhost"
					for _, h := range r.Headers {
						switch strings.ToLower(h.Name) {
						case "host", "content-length", "connection", "transfer-encoding":
							continue
						}
						hr.Header.Add(h.Name, h.Value)
					}
					resp, err := client.Do(hr)
					if err == nil {
						code = resp.StatusCode
						resp.Body.Close()
					}
				}
				mu.Lock()
				if code == 0 {
					errs++
				}
				if r.Attack {
					attacks++
					if code == 403 {
						attacksBlocked++
					}
				} else {
					benign++
					if code == 403 {
						benignBlocked++
					}
				}
				mu.Unlock()
			}
		}()
	}
	for i := range reqs {
		next <- i
	}
	close(next)
	wg.Wait()
	fmt.Printf("%-22s attacks blocked %5d/%-5d (%.1f%%)  benign blocked %4d/%-4d (%.1f%%)  errors %d\n", *name,
		attacksBlocked, attacks, 100*float64(attacksBlocked)/float64(max(attacks, 1)),
		benignBlocked, benign, 100*float64(benignBlocked)/float64(max(benign, 1)), errs)
}
