# A function URL that takes signed requests only, and permissions for a
# service bounded by the resource that calls.
resource "aws_lambda_function_url" "internal" {
  function_name      = "internal"
  authorization_type = "AWS_IAM"
}

resource "aws_lambda_permission" "alb" {
  statement_id  = "AllowExecutionFromLB"
  action        = "lambda:InvokeFunction"
  function_name = "internal"
  principal     = "elasticloadbalancing.amazonaws.com"
  source_arn    = "arn:aws:elasticloadbalancing:eu-west-1:111122223333:targetgroup/internal/0123456789abcdef"
}

resource "aws_lambda_permission" "partner" {
  statement_id   = "AllowPartnerAccount"
  action         = "lambda:InvokeFunction"
  function_name  = "internal"
  principal      = "*"
  source_account = "444455556666"
}
