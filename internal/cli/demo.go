package cli

import (
	"fmt"
	"io"
)

func demo(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "holdfast demo: not built yet")
	return 1
}
