package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/lease/dynamo"
	"github.com/ksp-project/ksp/lease/sqlite"
	"github.com/ksp-project/ksp/multilang"
	"github.com/spf13/cobra"
)

func kclCmd() *cobra.Command {
	var propsPath, leaseDB, logLevel string
	cmd := &cobra.Command{
		Use:   "kcl --properties FILE",
		Short: "Run a KCL MultiLang record processor (amazon_kclpy, aws-kcl, ...) without a JVM",
		Long: `Be the KCL's MultiLangDaemon: read its properties file, consume the stream on
the KCL's lease table, start executableName once per leased shard and speak
the MultiLang protocol with it over stdin/stdout (see package multilang and
docs/multilang.md). The child's stderr goes to the log.

The lease table is the DynamoDB table named applicationName (or tableName),
at dynamoDBEndpoint when set, shared with Java KCL workers; --lease-db uses a
SQLite file instead (several local ksp processes may share it).

Properties ksp does not use, and unknown ones, are named in a warning. A
missing required property or an executable that cannot run is one line and
exit status 2, before any lease is taken.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if propsPath != "" {
					return usageError{errors.New("give the properties file once: --properties or an argument")}
				}
				propsPath = args[0]
			}
			if propsPath == "" {
				return usageError{errors.New("--properties is required")}
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usageError{fmt.Errorf("--log-level %q: %v", logLevel, err)}
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			props, err := multilang.LoadProperties(propsPath)
			if err != nil {
				return usageError{err}
			}
			if err := multilang.CheckExecutable(props.Executable); err != nil {
				return usageError{err}
			}
			for _, w := range props.Warnings {
				log.Warn(w)
			}
			ctx := cmd.Context()
			kin, err := kclAWS(ctx, props.Region, props.KinesisEndpoint, props.KinesisCredentials)
			if err != nil {
				return err
			}
			defer kin.done()
			store, err := kclLeaseStore(ctx, props, leaseDB)
			if err != nil {
				return err
			}
			defer store.Close()
			err = multilang.Run(ctx, multilang.Config{
				Properties: props,
				Kinesis:    kinesisFrom(kin.cfg, kin.endpoint),
				LeaseStore: store,
				Logger:     log,
			})
			if err != nil && !errors.Is(err, context.Canceled) {
				return kin.flags.explain(err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&propsPath, "properties", "", "the MultiLangDaemon properties file")
	f.StringVar(&leaseDB, "lease-db", "", "SQLite file for the lease table instead of DynamoDB")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

// kclClient is an AWS configuration built from the properties' region,
// endpoint and credentials provider.
type kclClient struct {
	flags    *awsFlags
	cfg      aws.Config
	endpoint string
}

func (k kclClient) done() { k.flags.done() }

func kclAWS(ctx context.Context, region, endpoint string, creds multilang.Credentials) (kclClient, error) {
	a := &awsFlags{region: region, endpoint: endpoint, profile: creds.Profile}
	cfg, ep, err := a.config(ctx)
	if err != nil {
		return kclClient{}, err
	}
	if creds.Source == "environment" {
		id, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
		if id == "" || secret == "" {
			return kclClient{}, errors.New("AWSCredentialsProvider EnvironmentVariableCredentialsProvider: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set")
		}
		cfg.Credentials = credentials.NewStaticCredentialsProvider(id, secret, os.Getenv("AWS_SESSION_TOKEN"))
	}
	return kclClient{flags: a, cfg: cfg, endpoint: ep}, nil
}

// kclLeaseStore opens the lease table: the SQLite file, or DynamoDB.
func kclLeaseStore(ctx context.Context, props *multilang.Properties, leaseDB string) (lease.Store, error) {
	if leaseDB != "" {
		s, err := sqlite.Open(ctx, leaseDB, props.TableName)
		if err != nil {
			return nil, fmt.Errorf("--lease-db %s: %w", leaseDB, err)
		}
		return s, nil
	}
	ddb, err := kclAWS(ctx, props.Region, props.DynamoDBEndpoint, props.DynamoDBCredentials)
	if err != nil {
		return nil, err
	}
	s, err := dynamo.New(dynamoFrom(ddb.cfg, props.DynamoDBEndpoint), props.TableName)
	if err != nil {
		return nil, err
	}
	return s, nil
}
