/* test-gv-filter.cc — filter expressions (ui/gv-filter.h), no display.
 *
 * A small table of columns with missing values; every expression's selection is compared with
 * the same condition written in C++ over all rows, and malformed expressions must give errors
 * naming the right position. */
#include "test-support.h"

#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "gv-filter.h"

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN ();

/* 12 rows. Z and MAG_R have missing values (NaN); FLUX_R has a zero. */
struct Table
{
  std::map<std::string, std::vector<double>> columns = {
    { "Z", { 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, kNaN, 0.12, 0.19, 0.21, 0.0, kNaN } },
    { "MAG_R", { 16.5, 17.0, 17.2, 17.9, 18.0, 18.5, 17.5, kNaN, 19.0, 17.01, 16.99, 17.99 } },
    { "LOGMSTAR", { 9.5, 10.0, 10.5, 11.0, 9.0, 10.2, 10.8, 11.3, 8.7, 10.01, 9.99, 10.6 } },
    { "FLUX_G", { 1.0, 2.0, 3.0, 0.5, 4.0, 1.5, 2.5, 0.2, 6.0, 1.0, 0.0, 3.3 } },
    { "FLUX_R", { 2.0, 3.0, 4.0, 1.0, 5.0, 3.0, 2.0, 0.0, 8.0, 1.9, 1.0, 6.6 } },
  };
  size_t n_rows () const { return columns.at ("Z").size (); }
};

const double *
lookup (const char *name, gpointer user_data)
{
  auto *table = static_cast<Table *> (user_data);
  std::string upper (name);
  for (auto &c : upper)
    c = g_ascii_toupper (c);
  auto it = table->columns.find (upper);
  return it == table->columns.end () ? nullptr : it->second.data ();
}

class FilterTest : public ::testing::Test
{
protected:
  Table table_;

  /* Rows matching `expression`, failing the test when it does not parse. */
  std::vector<gint64>
  select (const std::string &expression)
  {
    ErrorHolder error;
    GvFilter *filter = gv_filter_new (expression.c_str (), lookup, &table_, error.out ());
    EXPECT_NE (filter, nullptr) << expression << ": " << (error ? error->message : "");
    if (filter == nullptr)
      return { -1 };
    std::vector<gint64> all (table_.n_rows ());
    for (size_t r = 0; r < all.size (); r++)
      all[r] = (gint64) r;
    std::vector<gint64> matched (all.size ());
    gsize n = gv_filter_select (filter, all.data (), all.size (), matched.data ());
    matched.resize (n);
    /* gv_filter_matches must agree row by row. */
    for (size_t r = 0; r < all.size (); r++)
      EXPECT_EQ ((bool) gv_filter_matches (filter, (gint64) r),
                 std::find (matched.begin (), matched.end (), (gint64) r) != matched.end ())
          << expression << " row " << r;
    EXPECT_STREQ (gv_filter_get_expression (filter), expression.c_str ());
    gv_filter_unref (filter);
    return matched;
  }

  /* Rows for which the C++ condition holds. */
  std::vector<gint64>
  expected (const std::function<bool (std::map<std::string, double> &)> &condition)
  {
    std::vector<gint64> rows;
    for (size_t r = 0; r < table_.n_rows (); r++)
      {
        std::map<std::string, double> row;
        for (auto &[name, values] : table_.columns)
          row[name] = values[r];
        if (condition (row))
          rows.push_back ((gint64) r);
      }
    return rows;
  }

  /* The error of a malformed expression. */
  void
  expect_error (const std::string &expression, GvFilterError code,
                std::vector<std::string> fragments)
  {
    ErrorHolder error;
    GvFilter *filter = gv_filter_new (expression.c_str (), lookup, &table_, error.out ());
    EXPECT_EQ (filter, nullptr) << expression << " should not parse";
    if (filter != nullptr)
      {
        gv_filter_unref (filter);
        return;
      }
    ASSERT_NE (error.error, nullptr) << expression;
    EXPECT_TRUE (g_error_matches (error, GV_FILTER_ERROR, code))
        << expression << ": code " << error->code << " (" << error->message << ")";
    for (const auto &fragment : fragments)
      EXPECT_NE (std::string (error->message).find (fragment), std::string::npos)
          << expression << ": \"" << error->message << "\" lacks \"" << fragment << "\"";
  }
};

/* Comparisons with NaN are false in C++ too, except !=, which the filter treats as false. */
bool
ne (double a, double b)
{
  return !std::isnan (a) && !std::isnan (b) && a != b;
}

} // namespace

TEST_F (FilterTest, SimpleComparisons)
{
  EXPECT_EQ (select ("Z < 0.2"), expected ([] (auto &r) { return r["Z"] < 0.2; }));
  EXPECT_EQ (select ("Z<=0.2"), expected ([] (auto &r) { return r["Z"] <= 0.2; }));
  EXPECT_EQ (select ("Z > 0.2"), expected ([] (auto &r) { return r["Z"] > 0.2; }));
  EXPECT_EQ (select ("Z >= 0.2"), expected ([] (auto &r) { return r["Z"] >= 0.2; }));
  EXPECT_EQ (select ("LOGMSTAR == 10"), expected ([] (auto &r) { return r["LOGMSTAR"] == 10; }));
  EXPECT_EQ (select ("LOGMSTAR = 10"), expected ([] (auto &r) { return r["LOGMSTAR"] == 10; }));
  EXPECT_EQ (select ("0.2 > Z"), expected ([] (auto &r) { return 0.2 > r["Z"]; }));
  /* The expected selections are not trivial (neither empty nor everything). */
  EXPECT_EQ (select ("Z < 0.2").size (), 6u);
  EXPECT_EQ (select ("LOGMSTAR = 10").size (), 1u);
}

TEST_F (FilterTest, NaNComparesFalse)
{
  /* Rows 6 and 11 have no Z: neither side of the cut, nor "!=", selects them. */
  std::vector<gint64> below = select ("Z < 0.2"), above = select ("Z >= 0.2");
  EXPECT_EQ (below.size () + above.size (), table_.n_rows () - 2);
  for (gint64 missing : { 6, 11 })
    {
      EXPECT_EQ (std::count (below.begin (), below.end (), missing), 0);
      EXPECT_EQ (std::count (above.begin (), above.end (), missing), 0);
    }
  EXPECT_EQ (select ("Z != 0.1"), expected ([] (auto &r) { return ne (r["Z"], 0.1); }));
  EXPECT_EQ (select ("Z <> 0.1"), select ("Z != 0.1"));
  EXPECT_EQ (select ("Z != 0.1").size (), 9u);
  /* "not" of a false comparison is true, so NOT (Z < 0.2) keeps the missing rows. */
  EXPECT_EQ (select ("not Z < 0.2"), expected ([] (auto &r) { return !(r["Z"] < 0.2); }));
  EXPECT_EQ (select ("isnan(Z)"), (std::vector<gint64>{ 6, 11 }));
  EXPECT_EQ (select ("!isnan(z) && !isnan(mag_r)"),
             expected ([] (auto &r) { return !std::isnan (r["Z"]) && !std::isnan (r["MAG_R"]); }));
}

TEST_F (FilterTest, ChainedComparisons)
{
  auto range = [] (auto &r) { return 17 < r["MAG_R"] && r["MAG_R"] < 18; };
  EXPECT_EQ (select ("17 < MAG_R < 18"), expected (range));
  EXPECT_EQ (select ("17 < MAG_R < 18").size (), 5u); /* 17.2 17.9 17.5 17.01 17.99 */
  EXPECT_EQ (select ("17 <= MAG_R <= 18"),
             expected ([] (auto &r) { return 17 <= r["MAG_R"] && r["MAG_R"] <= 18; }));
  EXPECT_EQ (select ("18 > MAG_R > 17"), expected (range));
  /* Three links: 9 < LOGMSTAR < 11 < MAG_R * 1 — the last link compares 11 with MAG_R. */
  EXPECT_EQ (select ("9 < LOGMSTAR < 11 < MAG_R"),
             expected ([] (auto &r) {
               return 9 < r["LOGMSTAR"] && r["LOGMSTAR"] < 11 && 11 < r["MAG_R"];
             }));
  EXPECT_EQ (select ("0.1 <= Z < 0.2 and 17 < MAG_R < 18"),
             expected ([] (auto &r) {
               return 0.1 <= r["Z"] && r["Z"] < 0.2 && 17 < r["MAG_R"] && r["MAG_R"] < 18;
             }));
}

TEST_F (FilterTest, LogicalOperators)
{
  auto z_and_mass = [] (auto &r) { return r["Z"] >= 0.1 && r["LOGMSTAR"] > 10; };
  EXPECT_EQ (select ("Z >= 0.1 && LOGMSTAR > 10"), expected (z_and_mass));
  EXPECT_EQ (select ("Z >= 0.1 and LOGMSTAR > 10"), expected (z_and_mass));
  EXPECT_EQ (select ("Z >= 0.1 AND LOGMSTAR > 10"), expected (z_and_mass));
  EXPECT_EQ (select ("Z >= 0.1 And LOGMSTAR > 10").size (), 5u);
  auto z_or = [] (auto &r) { return r["Z"] < 0.1 || r["Z"] > 0.25; };
  EXPECT_EQ (select ("Z < 0.1 || Z > 0.25"), expected (z_or));
  EXPECT_EQ (select ("z < 0.1 OR z > 0.25"), expected (z_or));
  /* "and" binds tighter than "or". */
  EXPECT_EQ (select ("Z < 0.1 or Z > 0.25 and LOGMSTAR > 10"),
             expected ([] (auto &r) {
               return r["Z"] < 0.1 || (r["Z"] > 0.25 && r["LOGMSTAR"] > 10);
             }));
  EXPECT_EQ (select ("(Z < 0.1 or Z > 0.25) and LOGMSTAR > 10"),
             expected ([] (auto &r) {
               return (r["Z"] < 0.1 || r["Z"] > 0.25) && r["LOGMSTAR"] > 10;
             }));
  EXPECT_EQ (select ("not (Z < 0.1 or Z > 0.25)"),
             expected ([] (auto &r) { return !(r["Z"] < 0.1 || r["Z"] > 0.25); }));
  EXPECT_EQ (select ("!(LOGMSTAR > 10) && not not Z > 0.1"),
             expected ([] (auto &r) { return !(r["LOGMSTAR"] > 10) && r["Z"] > 0.1; }));
  EXPECT_EQ (select ("((((Z < 0.2))))"), select ("Z < 0.2"));
}

TEST_F (FilterTest, Arithmetic)
{
  EXPECT_EQ (select ("FLUX_G / FLUX_R > 0.5"),
             expected ([] (auto &r) { return r["FLUX_G"] / r["FLUX_R"] > 0.5; }));
  /* Row 7: 0.2 / 0 = +inf > 0.5 is true; row 10: 0 / 1 = 0 is not. */
  std::vector<gint64> ratio = select ("FLUX_G / FLUX_R > 0.5");
  EXPECT_EQ (std::count (ratio.begin (), ratio.end (), 7), 1);
  EXPECT_EQ (std::count (ratio.begin (), ratio.end (), 10), 0);
  /* Precedence: * and / before + and −, left to right, unary minus. */
  EXPECT_EQ (select ("FLUX_G + FLUX_R * 2 > 9"),
             expected ([] (auto &r) { return r["FLUX_G"] + r["FLUX_R"] * 2 > 9; }));
  EXPECT_EQ (select ("(FLUX_G + FLUX_R) * 2 > 9"),
             expected ([] (auto &r) { return (r["FLUX_G"] + r["FLUX_R"]) * 2 > 9; }));
  EXPECT_EQ (select ("FLUX_R - FLUX_G - 1 > 0"),
             expected ([] (auto &r) { return r["FLUX_R"] - r["FLUX_G"] - 1 > 0; }));
  EXPECT_EQ (select ("FLUX_R / FLUX_G / 2 < 0.6"),
             expected ([] (auto &r) { return r["FLUX_R"] / r["FLUX_G"] / 2 < 0.6; }));
  EXPECT_EQ (select ("-Z > -0.2"), expected ([] (auto &r) { return -r["Z"] > -0.2; }));
  EXPECT_EQ (select ("--Z < +0.2"), select ("Z < 0.2"));
  EXPECT_EQ (select ("2*-Z > -0.3"), expected ([] (auto &r) { return 2 * -r["Z"] > -0.3; }));
  /* Numbers: exponents, leading dot, trailing dot. */
  EXPECT_EQ (select ("Z < 2e-1"), select ("Z < 0.2"));
  EXPECT_EQ (select ("Z < .2"), select ("Z < 0.2"));
  EXPECT_EQ (select ("Z*10 < 2."), expected ([] (auto &r) { return r["Z"] * 10 < 2.0; }));
  EXPECT_EQ (select ("LOGMSTAR > 1.0E+1"), expected ([] (auto &r) { return r["LOGMSTAR"] > 10; }));
  /* Functions: a magnitude from a flux. */
  EXPECT_EQ (select ("22.5 - 2.5 * log10(FLUX_R) < 21"),
             expected ([] (auto &r) { return 22.5 - 2.5 * std::log10 (r["FLUX_R"]) < 21; }));
  EXPECT_EQ (select ("abs(Z - 0.2) < 0.06"),
             expected ([] (auto &r) { return std::fabs (r["Z"] - 0.2) < 0.06; }));
  EXPECT_EQ (select ("SQRT(flux_r) >= 2 or ln(FLUX_G) < 0 or exp(Z) > 1.3"),
             expected ([] (auto &r) {
               return std::sqrt (r["FLUX_R"]) >= 2 || std::log (r["FLUX_G"]) < 0
                      || std::exp (r["Z"]) > 1.3;
             }));
}

TEST_F (FilterTest, ColumnNamesAreCaseInsensitive)
{
  EXPECT_EQ (select ("z < 0.2"), select ("Z < 0.2"));
  EXPECT_EQ (select ("Mag_R > 17 and logmstar < 11"),
             expected ([] (auto &r) { return r["MAG_R"] > 17 && r["LOGMSTAR"] < 11; }));
}

TEST_F (FilterTest, SyntaxErrorsNameThePosition)
{
  expect_error ("Z <", GV_FILTER_ERROR_SYNTAX, { "position 4", "end" });
  expect_error ("Z < 0.2 &&", GV_FILTER_ERROR_SYNTAX, { "position 11" });
  expect_error ("(Z < 0.2", GV_FILTER_ERROR_SYNTAX, { "“)”", "position 1", "position 9" });
  expect_error ("Z < 0.2)", GV_FILTER_ERROR_SYNTAX, { "position 8", "“)”" });
  expect_error ("Z < 0.2 LOGMSTAR", GV_FILTER_ERROR_SYNTAX, { "position 9", "“LOGMSTAR”" });
  expect_error ("Z < 0.2 # comment", GV_FILTER_ERROR_SYNTAX, { "“#”", "position 9" });
  expect_error ("Z < 0.2.3", GV_FILTER_ERROR_SYNTAX, { "number", "position 5" });
  expect_error ("Z < 3abc", GV_FILTER_ERROR_SYNTAX, { "number", "position 5" });
  expect_error ("Z < * 2", GV_FILTER_ERROR_SYNTAX, { "position 5", "“*”" });
  expect_error ("()", GV_FILTER_ERROR_SYNTAX, { "position 2" });
  expect_error ("log10(FLUX_R", GV_FILTER_ERROR_SYNTAX, { "position 6", "position 13" });
  /* Positions count characters, not bytes: "é" is two bytes. */
  expect_error ("é < 2", GV_FILTER_ERROR_SYNTAX, { "“é”", "position 1" });
  expect_error ("Z < 0.2 and é", GV_FILTER_ERROR_SYNTAX, { "position 13" });
  expect_error ("   ", GV_FILTER_ERROR_SYNTAX, { "empty" });
  expect_error ("", GV_FILTER_ERROR_SYNTAX, { "empty" });
}

TEST_F (FilterTest, UnknownNames)
{
  expect_error ("REDSHIFT < 0.2", GV_FILTER_ERROR_UNKNOWN_COLUMN, { "“REDSHIFT”", "position 1" });
  expect_error ("Z < 0.2 and mass > 10", GV_FILTER_ERROR_UNKNOWN_COLUMN, { "“mass”", "position 13" });
  expect_error ("log(Z) < 0", GV_FILTER_ERROR_UNKNOWN_COLUMN, { "function", "“log”", "log10" });
}

TEST_F (FilterTest, TypeErrors)
{
  expect_error ("Z", GV_FILTER_ERROR_TYPE, { "number", "condition" });
  expect_error ("Z + 1", GV_FILTER_ERROR_TYPE, { "condition" });
  expect_error ("Z and LOGMSTAR > 10", GV_FILTER_ERROR_TYPE, { "“and”", "position 3", "position 1" });
  expect_error ("Z < 0.2 or 5", GV_FILTER_ERROR_TYPE, { "“or”", "position 12" });
  expect_error ("not Z", GV_FILTER_ERROR_TYPE, { "“not”" });
  expect_error ("(Z < 0.2) + 1 > 0", GV_FILTER_ERROR_TYPE, { "“+”", "position 11" });
  expect_error ("(Z < 0.2) < 1", GV_FILTER_ERROR_TYPE, { "“<”" });
  expect_error ("-(Z < 0.2)", GV_FILTER_ERROR_TYPE, { "“-”" });
  expect_error ("abs(Z < 1) > 0", GV_FILTER_ERROR_TYPE, { "“abs”" });
}

TEST_F (FilterTest, BlankText)
{
  EXPECT_TRUE (gv_filter_text_is_blank (nullptr));
  EXPECT_TRUE (gv_filter_text_is_blank (""));
  EXPECT_TRUE (gv_filter_text_is_blank (" \t "));
  EXPECT_FALSE (gv_filter_text_is_blank (" Z < 1 "));
}

TEST_F (FilterTest, SelectInPlaceAndSubsets)
{
  ErrorHolder error;
  GvFilter *filter = gv_filter_new ("LOGMSTAR >= 10", lookup, &table_, error.out ());
  ASSERT_NE (filter, nullptr) << error->message;
  /* A subset in a sorted order, filtered in place: order is kept. */
  std::vector<gint64> rows = { 11, 3, 0, 7, 2, 8 };
  gsize n = gv_filter_select (filter, rows.data (), rows.size (), rows.data ());
  rows.resize (n);
  EXPECT_EQ (rows, (std::vector<gint64>{ 11, 3, 7, 2 }));
  /* The boxed type copies by reference. */
  GvFilter *copy = (GvFilter *) g_boxed_copy (GV_TYPE_FILTER, filter);
  EXPECT_EQ (copy, filter);
  g_boxed_free (GV_TYPE_FILTER, copy);
  gv_filter_unref (filter);
}
