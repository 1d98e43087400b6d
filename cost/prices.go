package cost

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
)

// Prices is a dated price table of Kinesis Data Streams for one region.
type Prices struct {
	Region        string  `json:"region"`
	Currency      string  `json:"currency"`
	Source        string  `json:"source"`
	AsOf          string  `json:"asOf"`
	Note          string  `json:"note,omitempty"`
	HoursPerMonth float64 `json:"hoursPerMonth"`
	Provisioned   struct {
		ShardHour                  *float64 `json:"shardHour"`
		PutPayloadUnitsPerMillion  *float64 `json:"putPayloadUnitsPerMillion"`
		ExtendedRetentionShardHour *float64 `json:"extendedRetentionShardHour"`
		LongTermRetentionGBMonth   *float64 `json:"longTermRetentionGBMonth"`
		FanoutConsumerShardHour    *float64 `json:"fanoutConsumerShardHour"`
		FanoutDataGB               *float64 `json:"fanoutDataGB"`
	} `json:"provisioned"`
	OnDemand struct {
		StreamHour               *float64 `json:"streamHour"`
		DataInGB                 *float64 `json:"dataInGB"`
		DataOutGB                *float64 `json:"dataOutGB"`
		FanoutDataGB             *float64 `json:"fanoutDataGB"`
		ExtendedRetentionGBMonth *float64 `json:"extendedRetentionGBMonth"`
		LongTermRetentionGBMonth *float64 `json:"longTermRetentionGBMonth"`
	} `json:"onDemand"`
}

//go:embed prices-us-east-1.json
var defaultPrices []byte

// DefaultPrices is the table shipped with ksp: us-east-1, with its source
// and date in the file (prices-us-east-1.json).
func DefaultPrices() *Prices {
	p, err := ParsePrices(defaultPrices)
	if err != nil {
		panic("cost: the shipped price table is invalid: " + err.Error()) // caught by the tests
	}
	return p
}

// LoadPrices reads a price table in the shipped file's format (--prices).
func LoadPrices(file string) (*Prices, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	p, err := ParsePrices(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return p, nil
}

// ParsePrices decodes and checks a price table: every price present and
// not negative, no unknown field, a source and a date.
func ParsePrices(b []byte) (*Prices, error) {
	var p Prices
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("cost: price table: %w", err)
	}
	if p.Source == "" || p.AsOf == "" || p.Region == "" {
		return nil, fmt.Errorf("cost: price table: region, source and asOf are required")
	}
	if p.HoursPerMonth <= 0 {
		return nil, fmt.Errorf("cost: price table: hoursPerMonth %v must be positive", p.HoursPerMonth)
	}
	for name, v := range map[string]*float64{
		"provisioned.shardHour": p.Provisioned.ShardHour, "provisioned.putPayloadUnitsPerMillion": p.Provisioned.PutPayloadUnitsPerMillion,
		"provisioned.extendedRetentionShardHour": p.Provisioned.ExtendedRetentionShardHour, "provisioned.longTermRetentionGBMonth": p.Provisioned.LongTermRetentionGBMonth,
		"provisioned.fanoutConsumerShardHour": p.Provisioned.FanoutConsumerShardHour, "provisioned.fanoutDataGB": p.Provisioned.FanoutDataGB,
		"onDemand.streamHour": p.OnDemand.StreamHour, "onDemand.dataInGB": p.OnDemand.DataInGB, "onDemand.dataOutGB": p.OnDemand.DataOutGB,
		"onDemand.fanoutDataGB": p.OnDemand.FanoutDataGB, "onDemand.extendedRetentionGBMonth": p.OnDemand.ExtendedRetentionGBMonth,
		"onDemand.longTermRetentionGBMonth": p.OnDemand.LongTermRetentionGBMonth,
	} {
		if v == nil || *v < 0 {
			return nil, fmt.Errorf("cost: price table: %s is missing or negative", name)
		}
	}
	return &p, nil
}
