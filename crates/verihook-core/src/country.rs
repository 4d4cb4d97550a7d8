//! ISO 3166-1 alpha-2 country codes: the 249 officially assigned ones.

const ASSIGNED: &str = "\
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ \
BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ \
CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ \
DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR \
GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY \
HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP \
KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY \
MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ \
NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY \
QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ \
TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ \
VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/// A country, as an assigned ISO 3166-1 alpha-2 code in upper case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// Accepts an assigned code in upper case (`DE`, `US`); nothing else.
    pub fn parse(s: &str) -> Option<Self> {
        let bytes: [u8; 2] = s.as_bytes().try_into().ok()?;
        let assigned = bytes.iter().all(u8::is_ascii_uppercase)
            && ASSIGNED.split(' ').any(|code| code.as_bytes() == bytes);
        assigned.then_some(Self(bytes))
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII upper-case letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_holds_249_distinct_codes() {
        let codes: std::collections::BTreeSet<_> = ASSIGNED.split(' ').collect();
        assert_eq!(codes.len(), 249);
        assert_eq!(ASSIGNED.split(' ').count(), 249);
    }

    #[test]
    fn parses_assigned_codes_only() {
        assert_eq!(
            CountryCode::parse("DE").map(|c| c.as_str().to_owned()),
            Some("DE".into())
        );
        for bad in ["de", "XX", "UK", "D", "DEU", "", "ÄÄ"] {
            assert_eq!(CountryCode::parse(bad), None, "{bad}");
        }
    }
}
