package main

// The --ca flag of the commands that talk to a running serve (bench,
// status): a private certificate authority to trust for https:// and
// wss://, such as the one that signed a serve --tls-cert.

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"

	"github.com/urfave/cli/v2"
)

func caFlag() cli.Flag {
	return &cli.StringFlag{Name: "ca", Usage: "also trust the certificate authorities in this PEM `FILE` for https:// and wss:// (such as the CA of a serve --tls-cert that no system store knows)", EnvVars: []string{"GECKOHOST_CA"}}
}

// caHTTPClient returns an HTTP client that trusts the system's roots and
// the certificates of the PEM file; nil (http.DefaultClient) for "".
func caHTTPClient(file string) (*http.Client, error) {
	if file == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--ca: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--ca %s: no PEM certificate in it", file)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr}, nil
}

// orDefault is hc, or http.DefaultClient for nil.
func orDefault(hc *http.Client) *http.Client {
	if hc == nil {
		return http.DefaultClient
	}
	return hc
}
