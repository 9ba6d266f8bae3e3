// http/form: application/x-www-form-urlencoded bodies for outbound REST calls
// (Twilio, Telnyx, Stripe all take form bodies). Percent-encoding per RFC 3986
// unreserved characters; decoding is http::ParseQuery in message.hpp.
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace clozit::http {

using FormParams = std::vector<std::pair<std::string, std::string>>;

/// Percent-encodes everything but ALPHA / DIGIT / "-" / "." / "_" / "~".
std::string FormEncode(std::string_view text);
/// "a=1&b=x%20y", in the given order (a repeated name repeats its key).
std::string FormBody(const FormParams& params);

}  // namespace clozit::http
