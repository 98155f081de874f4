# Resource policies whose every statement for all principals is bounded
# to callers named: a topic for its own account (aws:SourceOwner), a queue
# for one topic (aws:SourceArn), a key for the callers of one account
# through one service (kms:CallerAccount), and a repository for one
# account's role.
resource "aws_sns_topic" "events" {
  name = "events"
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "Owner"
      Effect    = "Allow"
      Principal = { AWS = "*" }
      Action    = ["SNS:Publish", "SNS:Subscribe"]
      Resource  = "arn:aws:sns:eu-west-1:111122223333:events"
      Condition = { StringEquals = { "AWS:SourceOwner" = "111122223333" } }
    }]
  })
}

resource "aws_sqs_queue_policy" "jobs" {
  queue_url = "https://sqs.eu-west-1.amazonaws.com/111122223333/jobs"
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "FromTopic"
      Effect    = "Allow"
      Principal = "*"
      Action    = "sqs:SendMessage"
      Resource  = "arn:aws:sqs:eu-west-1:111122223333:jobs"
      Condition = { ArnEquals = { "aws:SourceArn" = "arn:aws:sns:eu-west-1:111122223333:events" } }
    }]
  })
}

resource "aws_kms_key" "ebs" {
  description         = "ebs"
  enable_key_rotation = true
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "ThroughEC2"
      Effect    = "Allow"
      Principal = { AWS = "*" }
      Action    = ["kms:Encrypt", "kms:Decrypt", "kms:CreateGrant"]
      Resource  = "*"
      Condition = { StringEquals = { "kms:CallerAccount" = "111122223333", "kms:ViaService" = "ec2.eu-west-1.amazonaws.com" } }
    }]
  })
}

resource "aws_ecr_repository_policy" "app" {
  repository = "app"
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "Pull"
      Effect    = "Allow"
      Principal = { AWS = "arn:aws:iam::444455556666:role/deploy" }
      Action    = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    }]
  })
}
