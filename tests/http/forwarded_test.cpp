#include "http/forwarded.hpp"

#include <gtest/gtest.h>

namespace clozit::http {
namespace {

TEST(TrustedProxies, TheClientIsTheFirstUntrustedAddressFromTheRight) {
  auto proxies = TrustedProxies::Parse("127.0.0.1, 10.0.0.0/8 fd00::/8");
  ASSERT_TRUE(proxies.ok()) << proxies.error().message;
  // One proxy in front: it appended the client.
  EXPECT_EQ(proxies->ClientAddress("127.0.0.1", "203.0.113.7"), "203.0.113.7");
  // The client forged a first hop; the proxies' own hops are skipped.
  EXPECT_EQ(proxies->ClientAddress("127.0.0.1", "1.1.1.1, 203.0.113.7, 10.1.2.3"), "203.0.113.7");
  EXPECT_EQ(proxies->ClientAddress("10.9.9.9", " 2001:db8::5 , fd00::1"), "2001:db8::5");
  EXPECT_EQ(proxies->ClientAddress("127.0.0.1", "[2001:db8::6]:443"), "2001:db8::6");
  EXPECT_EQ(proxies->ClientAddress("127.0.0.1", "198.51.100.4:5123"), "198.51.100.4");
  // An IPv4 peer on a dual-stack socket.
  EXPECT_EQ(proxies->ClientAddress("::ffff:127.0.0.1", "203.0.113.8"), "203.0.113.8");
  // Garbage where an address should be: the nearest hop that is an address.
  EXPECT_EQ(proxies->ClientAddress("127.0.0.1", "evil, 10.0.0.2"), "10.0.0.2");
  EXPECT_EQ(proxies->ClientAddress("127.0.0.1", "not-an-address"), "127.0.0.1");
  // No header from a proxy: the proxy itself.
  EXPECT_EQ(proxies->ClientAddress("127.0.0.1", std::nullopt), "127.0.0.1");
}

TEST(TrustedProxies, AnUntrustedPeerKeepsItsOwnAddress) {
  auto proxies = TrustedProxies::Parse("10.0.0.0/8");
  ASSERT_TRUE(proxies.ok());
  EXPECT_EQ(proxies->ClientAddress("198.51.100.1", "203.0.113.7"), "198.51.100.1");
  EXPECT_FALSE(proxies->Contains("11.0.0.1"));
  EXPECT_TRUE(proxies->Contains("10.255.0.1"));
  auto none = TrustedProxies::Parse("");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(none->ClientAddress("127.0.0.1", "203.0.113.7"), "127.0.0.1");
}

TEST(TrustedProxies, ABadEntryIsRefusedByName) {
  for (const char* bad : {"10.0.0.0/33", "localhost", "10.0.0.1/8/1", "fd00::/129"}) {
    auto parsed = TrustedProxies::Parse(std::string("127.0.0.1, ") + bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(parsed.error().field, "server.trusted_proxies");
  }
}

}  // namespace
}  // namespace clozit::http
