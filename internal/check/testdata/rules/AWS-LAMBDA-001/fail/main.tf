# A function URL without authentication, with the permission that makes it
# public; a permission for every account without a source; a URL whose
# authorization type comes from a variable the scanned code does not give;
# a permission for a service that names no source, so a resource of that
# service in any account may invoke the function.
variable "url_auth" {
  type = string
}

resource "aws_lambda_function" "webhook" {
  function_name = "webhook"
  role          = "arn:aws:iam::111122223333:role/webhook"
  runtime       = "python3.12"
  handler       = "app.handler"
  filename      = "webhook.zip"
}

resource "aws_lambda_function_url" "webhook" {
  function_name      = aws_lambda_function.webhook.function_name
  authorization_type = "NONE"
}

resource "aws_lambda_permission" "webhook_url" {
  statement_id           = "FunctionURLAllowPublicAccess"
  action                 = "lambda:InvokeFunctionUrl"
  function_name          = aws_lambda_function.webhook.function_name
  principal              = "*"
  function_url_auth_type = "NONE"
}

resource "aws_lambda_function_url" "reports" {
  function_name      = "reports"
  authorization_type = var.url_auth
}

resource "aws_lambda_permission" "events" {
  statement_id  = "AllowExecutionFromEvents"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.webhook.function_name
  principal     = "events.amazonaws.com"
}
