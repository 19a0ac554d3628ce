// An in-memory S3-compatible server over HTTPS for the offsite-backup tests
// (test/integration/offsite-s3.test.ts): gofakes3 with one bucket, no authentication check.
package main

import (
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (port 0: any free port)")
	cert := flag.String("cert", "", "TLS certificate file (PEM)")
	key := flag.String("key", "", "TLS key file (PEM)")
	bucket := flag.String("bucket", "backups", "bucket created at start")
	portFile := flag.String("port-file", "", "file the listening port is written to once serving")
	flag.Parse()

	backend := s3mem.New()
	if err := backend.CreateBucket(*bucket); err != nil {
		log.Fatal(err)
	}
	listener, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	if *portFile != "" {
		port := []byte(strconv.Itoa(listener.Addr().(*net.TCPAddr).Port))
		if err := os.WriteFile(*portFile, port, 0o644); err != nil {
			log.Fatal(err)
		}
	}
	server := &http.Server{Handler: gofakes3.New(backend).Server()}
	log.Fatal(server.ServeTLS(listener, *cert, *key))
}
