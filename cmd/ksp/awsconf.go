package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
	"github.com/ksp-project/ksp/sdkhttp"
	"github.com/spf13/cobra"
)

// poolSize is sdkhttp.NewPooled's idle connections per endpoint.
const poolSize = 256

// awsFlags are the flags every command that talks to Kinesis shares: the
// aws-sdk-go-v2 configuration chain (environment, shared config and
// credentials files) with --profile and --region on top, and --endpoint
// (KSP_ENDPOINT) for a ksp server or another Kinesis-compatible one.
type awsFlags struct {
	profile, region, endpoint string
	// httpClient is the client the configuration built, closed by done.
	httpClient any
}

// done closes the idle connections of the command's HTTP client, so a
// server in the same process (tests) or a proxy is not left holding them.
func (a *awsFlags) done() {
	if c, ok := a.httpClient.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func (a *awsFlags) register(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&a.profile, "profile", "", "AWS shared config profile (default: AWS_PROFILE, else default)")
	f.StringVar(&a.region, "region", "", "AWS region (default: AWS_REGION or the profile's; us-east-1 with --endpoint)")
	f.StringVar(&a.endpoint, "endpoint", "", "Kinesis endpoint URL, e.g. a ksp server's http://127.0.0.1:4567 (default: KSP_ENDPOINT, else AWS)")
}

// registerAs adds a second side's flags, each name starting with prefix
// (e.g. --to-region), for commands that talk to two streams.
func (a *awsFlags) registerAs(cmd *cobra.Command, prefix, side string) {
	f := cmd.Flags()
	f.StringVar(&a.profile, prefix+"profile", "", "AWS shared config profile of the "+side+" (default: AWS_PROFILE, else default)")
	f.StringVar(&a.region, prefix+"region", "", "AWS region of the "+side+" (default: AWS_REGION or the profile's; us-east-1 with an endpoint)")
	f.StringVar(&a.endpoint, prefix+"endpoint", "", "Kinesis endpoint URL of the "+side+" (default: KSP_ENDPOINT, else AWS)")
}

// kinesisClient loads the configuration and checks that it can sign
// requests, so that a missing credential is one line saying what to do
// rather than an SDK error on the first call.
func (a *awsFlags) kinesisClient(ctx context.Context) (*kinesis.Client, error) {
	cfg, endpoint, err := a.config(ctx)
	if err != nil {
		return nil, err
	}
	return kinesisFrom(cfg, endpoint), nil
}

// kinesisFrom is the Kinesis client of cfg at endpoint ("" for AWS's).
func kinesisFrom(cfg aws.Config, endpoint string) *kinesis.Client {
	var kopts []func(*kinesis.Options)
	if endpoint != "" {
		kopts = append(kopts, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(endpoint) })
	}
	return kinesis.NewFromConfig(cfg, kopts...)
}

// dynamoFrom is kinesisFrom for the DynamoDB client of a lease table, its
// endpoint ("" for AWS's) given apart from the Kinesis one.
func dynamoFrom(cfg aws.Config, endpoint string) *dynamodb.Client {
	var opts []func(*dynamodb.Options)
	if endpoint != "" {
		opts = append(opts, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(endpoint) })
	}
	return dynamodb.NewFromConfig(cfg, opts...)
}

// config loads the AWS configuration the flags select and returns it with
// the Kinesis endpoint ("" for AWS's).
func (a *awsFlags) config(ctx context.Context) (aws.Config, string, error) {
	endpoint := a.endpoint
	if endpoint == "" {
		endpoint = os.Getenv("KSP_ENDPOINT")
	}
	// The SDK's own warnings would break the one-line errors.
	opts := []func(*config.LoadOptions) error{
		config.WithLogger(logging.Nop{}),
		// The SDK's own client (so AWS_CA_BUNDLE still applies), with the
		// pool of sdkhttp.NewPooled: the producer keeps many requests in flight.
		config.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			tr.MaxIdleConns, tr.MaxIdleConnsPerHost = poolSize, poolSize
		})),
	}
	if endpoint != "" {
		// Not on EC2's metadata service: probing it delays every command
		// against a local server, and its credentials are not for it.
		opts = append(opts, config.WithEC2IMDSClientEnableState(imds.ClientDisabled))
	}
	if a.profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(a.profile))
	}
	if a.region != "" {
		opts = append(opts, config.WithRegion(a.region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, "", fmt.Errorf("loading AWS configuration: %v (check --profile and ~/.aws/config)", err)
	}
	// After loading: the chain builds its own HTTP client (AWS_CA_BUNDLE,
	// for one) and the fix must wrap whichever it built.
	a.httpClient = cfg.HTTPClient
	cfg.HTTPClient = sdkhttp.Fix(cfg.HTTPClient)
	if cfg.Region == "" {
		if endpoint == "" {
			return aws.Config{}, "", errors.New("no AWS region: pass --region or set AWS_REGION (or point --endpoint at a ksp server)")
		}
		cfg.Region = "us-east-1"
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		if endpoint == "" {
			return aws.Config{}, "", errors.New("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, run `aws configure`, or pass --profile")
		}
		// A ksp server without --auth accepts any signature; one with --auth
		// answers with an error naming the access key it expects.
		cfg.Credentials = credentials.NewStaticCredentialsProvider("ksp", "ksp", "")
	}
	return cfg, endpoint, nil
}

// explain turns an error from a Kinesis call into one line: the AWS error
// code and message, or what to do when the endpoint cannot be reached.
func (a *awsFlags) explain(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		where := a.endpoint
		if where == "" {
			where = os.Getenv("KSP_ENDPOINT")
		}
		if where == "" {
			where = "the AWS endpoint"
		}
		return fmt.Errorf("cannot reach %s (%v): start `ksp server` or check --endpoint / KSP_ENDPOINT", where, op.Err)
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		return fmt.Errorf("%s: %s", api.ErrorCode(), api.ErrorMessage())
	}
	return err
}
