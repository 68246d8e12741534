package web_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/geckohost/geckohost/web"
)

// Serve the demo page on its own; geckohost serve plugs web.Handler() into
// host.Options.Web instead, next to the signaling endpoint.
func ExampleHandler() {
	srv := httptest.NewServer(web.Handler())
	defer srv.Close()

	res, err := http.Get(srv.URL + "/workers/echo.js")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	fmt.Println(res.Header.Get("Content-Type"))
	fmt.Print(string(body[len(body)-50:]))
	// Output:
	// text/javascript; charset=utf-8
	// self.onmessage = (e) => self.postMessage(e.data);
}

func ExampleDemoURL() {
	fmt.Println(web.DemoURL(":8765"))
	for _, w := range web.DemoWorkers() {
		fmt.Println(w.Name, w.Path)
	}
	// Output:
	// http://127.0.0.1:8765/
	// echo /workers/echo.js
	// primes /workers/primes.js
	// mandelbrot /workers/mandelbrot.js
}
