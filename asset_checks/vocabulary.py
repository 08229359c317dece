"""Every rule type a rule file may use, by the name it is written with."""

from asset_checks.market_rules import MARKET_RULE_TYPES
from asset_checks.rule_types import GENERIC_RULE_TYPES, RuleType

RULE_TYPES: dict[str, type[RuleType]] = {**GENERIC_RULE_TYPES, **MARKET_RULE_TYPES}
