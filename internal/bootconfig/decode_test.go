package bootconfig

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// fill sets every field of v, recursively, so that a field Decode does not know shows up as a
// difference from encoding/json: a field added to Config without teaching Decode fails here.
func fill(v reflect.Value, seed string) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(seed + " \"q\" \\ \t é \u2028 \U0001F600")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), seed)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fill(v.Index(i), seed+string(rune('0'+i)))
		}
	case reflect.Struct:
		for i := range v.NumField() {
			fill(v.Field(i), seed+"."+v.Type().Field(i).Name)
		}
	default:
		panic("fill: no case for " + v.Kind().String())
	}
}

// sameAsJSON checks that Decode and json.Unmarshal agree on data.
func sameAsJSON(t *testing.T, data string) {
	t.Helper()
	var want Config
	wantErr := json.Unmarshal([]byte(data), &want)
	got, err := Decode([]byte(data))
	switch {
	case wantErr != nil && err == nil:
		t.Errorf("Decode(%s) accepted what encoding/json refuses (%v)", data, wantErr)
	case wantErr == nil && err != nil:
		t.Errorf("Decode(%s): %v", data, err)
	case err == nil && !reflect.DeepEqual(*got, want):
		t.Errorf("Decode(%s)\n = %+v\nwant %+v", data, *got, want)
	}
}

func TestDecodeEveryField(t *testing.T) {
	var c Config
	fill(reflect.ValueOf(&c).Elem(), "x")
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	sameAsJSON(t, string(b))
	indented, _ := json.MarshalIndent(c, "", "  ")
	sameAsJSON(t, string(indented))
}

func TestDecodeLikeEncodingJSON(t *testing.T) {
	for _, data := range []string{
		`{}`, ` { } `, `null`, `{"args":null,"net":null,"mounts":null}`, `{"args":[]}`,
		`{"args":["a"],"args":["b"]}`,
		`{"unknown":{"a":[1,-2.5e3,true,false,null,"s",{"b":[]}]},"args":["a"]}`,
		`{"env":["A=\u00e9\ud83d\ude00\n\"\\\/\b\f\r\t"]}`,
		`{"env":["lone \ud800 half","lone \udc00 low","\ud800\u0041"]}`,
		`{"mounts":[{"tag":"v0","target":"/d","readonly":true},{"tag":"v1","target":"/e","readonly":false,"x":1}]}`,
		`{"net":{"address":"10.0.2.15/24","gateway":"10.0.2.2","dns":["10.0.2.3"]}}`,
		// Refused by both.
		``, `{`, `{"args":["a"]`, `{"args":["a",]}`, `{"args":"a"}`, `{"args":[1]}`, `[]`, `{} x`,
		`{"env":["a` + "\n" + `"]}`, `{"env":["\x"]}`, `{"env":["\u12"]}`, `{"mounts":[{"readonly":"yes"}]}`,
		`{"a" 1}`, `{a:1}`, `{"unknown":tru}`,
	} {
		sameAsJSON(t, data)
	}
}

func TestDecodeStrings(t *testing.T) {
	got, err := DecodeStrings([]byte(` ["sh", "-c", "echo \"hi\""] `))
	if err != nil || !reflect.DeepEqual(got, []string{"sh", "-c", `echo "hi"`}) {
		t.Errorf("DecodeStrings = %q, %v", got, err)
	}
	for _, bad := range []string{`[1]`, `"a"`, `["a"] ["b"]`, `[`} {
		if _, err := DecodeStrings([]byte(bad)); err == nil || !strings.Contains(err.Error(), "offset") {
			t.Errorf("DecodeStrings(%s) = %v, want an error with the offset", bad, err)
		}
	}
}
