package build

import (
	"errors"
	"fmt"
	"testing"
)

// When the store fails, its error comes first; an error only relayed through the pipe is not repeated.
func TestLayerErr(t *testing.T) {
	disk := errors.New("no space left on device")
	src := errors.New("read /etc/x: input/output error")
	cases := []struct {
		name       string
		serr, werr error
		want       string
	}{
		{"both fine", nil, nil, ""},
		{"writer failed, store relayed it", fmt.Errorf("write blob: %w", src), src, src.Error()},
		{"store failed, writer saw the pipe close", disk, fmt.Errorf("write /f: %w", disk), "store layer: " + disk.Error()},
		{"store failed, writer fine", disk, nil, "store layer: " + disk.Error()},
		{"both failed apart", disk, src, "store layer: " + disk.Error() + "\n" + src.Error()},
	}
	for _, c := range cases {
		err := layerErr(c.serr, c.werr)
		if got := fmt.Sprint(err); (err == nil) != (c.want == "") || err != nil && got != c.want {
			t.Errorf("%s: layerErr = %v, want %q", c.name, err, c.want)
		}
	}
}
