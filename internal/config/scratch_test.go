package config
import ("testing";"fmt";"os")
func TestScratch(t *testing.T) {
	for _, f := range []string{"testdata/spec.yaml", os.Getenv("CFG")} {
		if f == "" { continue }
		c, err := Load(f)
		fmt.Println(err)
		if c != nil { fmt.Print(Summary(c)) }
	}
}
