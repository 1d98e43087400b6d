// Package deploy takes a Kinesis application from local development to
// production with one CloudFormation template.
//
// Generate writes the template for a Config: the stream (provisioned or
// on-demand, retention, KMS encryption with the AWS-managed key or a new
// customer-managed key), enhanced fan-out consumers, the KCL lease table
// (exactly the table the KCL and ksp's lease/dynamo use, plus the KCL 3.x
// LeaseOwnerToLeaseKeyIndex), least-privilege managed policies for a
// producer, a KCL consumer and a Lambda consumer, an optional Lambda event
// source mapping with an SQS on-failure queue, an SNS topic, CloudWatch
// alarms and a dashboard. Every template Generate writes passes cfn-lint
// without errors or warnings (the tests run it).
//
// Policies name their actions (never "*") and scope them to the template's
// own ARNs; the only Resource "*" is cloudwatch:PutMetricData, which has no
// resource-level permissions and is limited to the KCL's namespace by a
// condition. Java KCL 3.0 to 3.4 also use two tables of their own
// (APP-CoordinatorState and APP-WorkerMetricStats), which the template does
// not declare; KCL 3.5+ keeps those items in the lease table, and ksp's
// consumer uses none of them.
//
// Apply creates a template's streams and consumers (resolved by package
// cfn) through any Kinesis API (the embedded server, another emulator, AWS)
// idempotently: applying the same plan twice changes nothing the second
// time.
package deploy
