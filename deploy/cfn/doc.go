// Package cfn reads AWS CloudFormation templates (YAML or JSON, with the
// short-form intrinsic tags such as !Ref and !GetAtt) and resolves their
// Kinesis resources into a Plan that ksp can create in any Kinesis endpoint:
// the embedded server (ksp server --template) or another one (ksp apply).
//
// Guarantees:
//   - Parse accepts every well-formed template and rejects, with one line
//     naming the place, input that is not YAML or JSON, a template that is
//     not a mapping with Resources, an unknown intrinsic function, and a
//     malformed intrinsic (a mapping with Ref or Fn:: next to other keys).
//   - Resolve evaluates the parameters (defaults or given values, AllowedValues
//     and Number checked), the Conditions, and every property of every
//     AWS::Kinesis::Stream and AWS::Kinesis::StreamConsumer, and validates
//     them as CloudFormation does (shard count, retention hours, names,
//     encryption, tags). It returns an error before anything is created, so
//     a caller that resolves every template first creates nothing half-way.
//   - Resources of other types are listed in Plan.Skipped and not evaluated;
//     a Ref to one resolves to its logical ID and a GetAtt to
//     "LogicalID.Attribute" (ksp creates no such resource).
//
// Supported intrinsics: Ref (parameters, pseudo parameters, resources),
// Fn::GetAtt, Fn::Sub, Fn::Join, Fn::Select, Fn::Split, Fn::If, Fn::Equals,
// Fn::Not, Fn::And, Fn::Or, Condition, Fn::FindInMap and Fn::Base64. Known
// functions whose value only AWS knows (Fn::GetAZs, Fn::ImportValue,
// Fn::Cidr, Fn::Length, Fn::ToJsonString, Fn::Transform) are accepted by
// Parse and rejected by Resolve when a Kinesis property uses them.
//
// A stream without a Name gets "STACK-LOGICALID" (CloudFormation appends a
// random suffix; ksp does not, so that applying a template twice finds the
// stream it created).
package cfn
