"""A class's races in the database: the teacher starts one (a new one replaces the last on the projector).

`ClassRaces` is the part of `mnistlab.classroom.ClassStore` that does this; what a race holds and who leads it are
the plain rules of `mnistlab.race`.
"""

from __future__ import annotations

import sqlalchemy as sa

from mnistlab.database import races
from mnistlab.race import Race, check_race_name, check_race_target
from mnistlab.settings import TrainingSettings


def _race(row) -> Race:
    reference = TrainingSettings.from_dict(row.reference) if row.reference else None
    return Race(row.id, row.class_id, row.name, float(row.target), float(row.started_at), reference)


class ClassRaces:
    """Starting a class's race and reading the current one."""

    def start_race(self, class_id: int, key: str | None, name: str, target: float, reference: TrainingSettings | None = None) -> Race:
        """Start a new race for the class (the teacher only): it holds the runs pressed from now on. The target is the
        validation accuracy to reach; `reference` is the lesson step raced, if any."""
        self._require_teacher(class_id, key)
        name, target = check_race_name(name), check_race_target(target)
        started_at = self.clock()
        with self._engine.begin() as connection:
            race_id = connection.execute(
                races.insert().values(
                    class_id=class_id,
                    name=name,
                    target=target,
                    reference=reference.to_dict() if reference is not None else None,
                    started_at=started_at,
                )
            ).inserted_primary_key[0]
        return Race(int(race_id), class_id, name, target, started_at, reference)

    def current_race(self, class_id: int) -> Race | None:
        """The class's newest race (the one on its projector), or None before the teacher starts one."""
        with self._engine.connect() as connection:
            row = connection.execute(sa.select(races).where(races.c.class_id == class_id).order_by(races.c.id.desc()).limit(1)).first()
        return _race(row) if row is not None else None

    def races_started(self, class_id: int) -> int:
        """How many races the class has had (the next one's default name counts on from it)."""
        with self._engine.connect() as connection:
            return int(connection.execute(sa.select(sa.func.count()).select_from(races).where(races.c.class_id == class_id)).scalar_one())
