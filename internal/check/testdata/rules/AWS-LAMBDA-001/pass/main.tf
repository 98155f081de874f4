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

# A module's permission for a load balancer target group: the principal
# comes from its caller, the source ARN bounds the grant whatever it is.
variable "lambda_principal" {
  type = string
}

resource "aws_lambda_permission" "target_group" {
  statement_id  = "AllowExecutionFromLb"
  action        = "lambda:InvokeFunction"
  function_name = "internal"
  principal     = var.lambda_principal
  source_arn    = "arn:aws:elasticloadbalancing:eu-west-1:111122223333:targetgroup/lambda/0123456789abcdef"
}
